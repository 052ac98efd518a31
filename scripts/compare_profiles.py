"""Compare the head rankings of the profiling methods (Spearman correlation, top-8 overlap) and print the
test-split results of their selected sets, as Markdown.

Reads what `scripts/profile_study.sh` wrote: <folder>/<method>_scores.json and <folder>/eval_<name>.json.
Run: .venv/bin/python scripts/compare_profiles.py docs/results/profile
"""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path

METHODS = ("exhaustive", "coarse-to-fine", "gradient")
EVALS = ("zero-shot", "provisional", "all-heads", "gradient", "coarse-to-fine", "exhaustive")


def spearman(first: list[str], second: list[str]) -> float:
    """Spearman's rho between two full rankings of the same items (no ties)."""
    position = {name: index for index, name in enumerate(second)}
    n = len(first)
    squared = sum((index - position[name]) ** 2 for index, name in enumerate(first))
    return 1 - 6 * squared / (n * (n * n - 1))


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/profile")
    scores = {m: json.loads((folder / f"{m}_scores.json").read_text()) for m in METHODS
              if (folder / f"{m}_scores.json").exists()}
    print("## Profiling runs\n")
    print("| method | wall time (s) | selected | k | valid objective |")
    print("|---|---|---|---|---|")
    for method, table in scores.items():
        objective = table["k_objective"].get(str(table["k"]))
        selected = table["selected"] or "-"
        count = len(selected.split(","))
        layers = ",".join(sorted({head.split(".")[0] for head in selected.split(",")}, key=int))
        shown = selected if count <= 8 else f"{count} heads in layers {layers}"
        value = "-" if objective is None else f"{objective:.3f}"
        print(f"| {method} | {table['seconds']} | {shown} | {table['k']} | {value} |")
    print("\n## Ranking agreement (Spearman rho over all heads; top-8 overlap)\n")
    tasks = list(next(iter(scores.values()))["tasks"]) if scores else []
    print("| pair | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for first, second in combinations(scores, 2):
        cells = []
        for task in tasks:
            a, b = scores[first]["tasks"][task]["ranking"], scores[second]["tasks"][task]["ranking"]
            cells.append(f"{spearman(a, b):.2f} ({len(set(a[:8]) & set(b[:8]))}/8)")
        print(f"| {first} vs {second} | " + " | ".join(cells) + " |")
    print("\n## Test split, PASTA with each head set\n")
    rows = []
    for name in EVALS:
        path = folder / f"eval_{name}.json"
        if path.exists():
            rows.append((name, json.loads(path.read_text())))
    if rows:
        header, _ = rows[0][1]["table"]["header"], None
        print("| heads | " + " | ".join(header[1:]) + " |")
        print("|---|" + "---|" * (len(header) - 1))
        for name, result in rows:
            for row in result["table"]["rows"]:
                print(f"| {name} ({row[0]}) | " + " | ".join(row[1:]) + " |")


if __name__ == "__main__":
    main()
