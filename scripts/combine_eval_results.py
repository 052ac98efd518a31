"""Merge several `attnsteer eval --json` files into one Table 1 (Markdown), with the overall average.

Run: .venv/bin/python scripts/combine_eval_results.py docs/results/eval/*.json
     .venv/bin/python scripts/combine_eval_results.py --by-file a.json b.json   (one row per file and method,
     named "<file name>: <method>", for runs of one method with different heads or settings)
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from attnsteer.evaluation import EvalResult, results_markdown, results_table


def main(arguments: list[str]) -> None:
    by_file = "--by-file" in arguments
    paths = [argument for argument in arguments if argument != "--by-file"]
    runs = []
    for path in paths:
        for run in json.load(open(path))["runs"]:
            result = EvalResult(**run)
            label = Path(path).stem.removeprefix("eval_")
            runs.append(replace(result, method=f"{label}: {result.method}") if by_file else result)
    header, rows = results_table(runs)
    print(results_markdown(header, rows, f"Combined from: {' '.join(paths)}"))


if __name__ == "__main__":
    main(sys.argv[1:])
