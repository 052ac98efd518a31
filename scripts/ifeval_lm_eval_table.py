"""Markdown table of the IFEval runs written by scripts/run_ifeval_lm_eval.sh (lm-eval's results JSON files).

usage: python scripts/ifeval_lm_eval_table.py docs/results/ifeval_lm_eval
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

RUNS = {"zero_shot": "zero-shot (plain prompt)", "steered": "PASTA, instruction sentences emphasised",
        "marked": "instruction sentences marked `*...*`, not steered"}
METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def latest_results(folder: Path) -> dict:
    files = sorted(folder.glob("*/results_*.json"))
    if not files:
        raise SystemExit(f"no lm-eval results under {folder}")
    return json.loads(files[-1].read_text())


def emphasis_line(log: Path) -> str:
    found = re.findall(r"attnsteer: emphasis rule .*", log.read_text()) if log.exists() else []
    return found[-1].removeprefix("attnsteer: ") if found else ""


def main(out: Path) -> None:
    print("| run | model_args | n | " + " | ".join(METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    notes = []
    for name, title in RUNS.items():
        if not (out / name).exists():
            continue
        results = latest_results(out / name)
        task = results["results"]["ifeval_local"]
        count = results["n-samples"]["ifeval_local"]["effective"]
        cells = [f"{100 * task[f'{metric},none']:.1f}" for metric in METRICS]
        print(f"| {title} | `{results['config']['model_args']}` | {count} | " + " | ".join(cells) + " |")
        notes.append(f"- {name}: {emphasis_line(out / f'{name}.log')}")
    print()
    print("Accuracies in %. Emphasis per run (from the run's log):")
    print("\n".join(notes))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/ifeval_lm_eval"))
