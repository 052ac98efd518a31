"""Merge several `attnsteer eval --json` files into one Table 1 (Markdown), with the overall average.

Run: .venv/bin/python scripts/combine_eval_results.py docs/results/eval/*.json
"""

from __future__ import annotations

import json
import sys

from attnsteer.evaluation import EvalResult, results_markdown, results_table


def main(paths: list[str]) -> None:
    runs = [EvalResult(**run) for path in paths for run in json.load(open(path))["runs"]]
    header, rows = results_table(runs)
    print(results_markdown(header, rows, f"Combined from: {' '.join(paths)}"))


if __name__ == "__main__":
    main(sys.argv[1:])
