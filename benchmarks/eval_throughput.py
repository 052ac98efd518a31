"""Evaluation throughput on the embedded model: examples per second per task, plain vs steered.

Each task's first --limit test examples run zero-shot (plain model) and with PASTA (same prompts,
emphasis steered), alternating which goes first over --repeat rounds; medians. Prints a table and
the steered / plain ratio per task (target: >= 0.95).
    .venv/bin/python benchmarks/eval_throughput.py [--limit 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics

import attnsteer
from attnsteer.evaluation import evaluate
from attnsteer.tasks import get_task, task_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(task_names()))
    args = parser.parse_args()
    model, tokenizer = attnsteer.load_model()
    steerer = attnsteer.Steerer(model, tokenizer, markup=None)
    print(f"{'task':16} {'plain ex/s':>11} {'steered ex/s':>13} {'ratio':>7}")
    for task_name in args.tasks.split(","):
        task = get_task(task_name)()
        rates: dict[str, list[float]] = {"zero-shot": [], "pasta": []}
        for round_index in range(args.repeat):
            order = ["zero-shot", "pasta"] if round_index % 2 == 0 else ["pasta", "zero-shot"]
            for method in order:
                result = evaluate(model, tokenizer, task, method, limit=args.limit, steerer=steerer, progress=False)
                rates[method].append(result.examples_per_second)
        plain, steered = statistics.median(rates["zero-shot"]), statistics.median(rates["pasta"])
        print(f"{task_name:16} {plain:11.2f} {steered:13.2f} {steered / plain:7.3f}", flush=True)


if __name__ == "__main__":
    main()
