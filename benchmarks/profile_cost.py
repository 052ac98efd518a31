"""What one (head, example) scoring costs in head profiling, relative to one full forward of that example.

For the same items (the first --n train examples of each paper task on the embedded model), in one process,
rotating the order over --repeat rounds (this machine is shared and noisy; medians are reported):
- full forward: each item alone, unsteered, the whole sequence (the naive cost of one scoring);
- exhaustive:   `attnsteer profile --method exhaustive` on those items (every head alone plus every
                whole layer, with the prefix cache, replayed lower layers and batched items); its
                time divided by (items x heads) is the cost of one (head, example) scoring;
- coarse-to-fine and gradient: their time per item, in full forwards.
Run: .venv/bin/python benchmarks/profile_cost.py [--n 8] [--repeat 3] [--quick]
`--quick` (n 4, repeat 1) ends with one line: cost_per_head_example=<ratio to a full forward>.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import attnsteer
from attnsteer.profiling.items import make_items
from attnsteer.profiling.methods import profile_task
from attnsteer.profiling.profile import DEFAULT_TASKS, spread
from attnsteer.profiling.scorer import HeadScorer
from attnsteer.tasks import get_task


def full_forwards(model, items) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        for item in items:
            model(input_ids=item.input_ids[None], logits_to_keep=item.num_scored_positions)
    return time.perf_counter() - started


def method_seconds(scorer, items_by_task, method) -> float:
    started = time.perf_counter()
    for task, items in items_by_task.items():
        profile_task(scorer, task, items, method)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="train examples per task")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="n 4, repeat 1, one summary line")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat = 4, 1
    torch.manual_seed(0)
    model, tokenizer = attnsteer.load_model()
    items_by_task = {task: make_items(spread(get_task(task)().examples("train", limit=args.n), args.n), tokenizer)[0]
                     for task in DEFAULT_TASKS}
    items = [item for task_items in items_by_task.values() for item in task_items]
    scorer = HeadScorer(model)
    heads = scorer.num_layers * scorer.num_heads
    cases = {
        "full forward": lambda: full_forwards(model, items),
        "exhaustive": lambda: method_seconds(scorer, items_by_task, "exhaustive"),
        "coarse-to-fine": lambda: method_seconds(scorer, items_by_task, "coarse-to-fine"),
        "gradient": lambda: method_seconds(scorer, items_by_task, "gradient"),
    }
    full_forwards(model, items[:2])  # warm up
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_index in range(args.repeat):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            seconds[name].append(cases[name]())
            print(f"round {round_index + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    forward = median["full forward"] / len(items)
    print(f"\n{len(items)} items ({args.n} per task), {heads} heads, medians of {args.repeat} rounds")
    print(f"full forward: {forward:.3f} s per item")
    per_head = median["exhaustive"] / (len(items) * heads)
    print(f"exhaustive: {median['exhaustive']:.1f} s = {per_head:.4f} s per (head, example) "
          f"= {per_head / forward:.3f} full forwards (includes baselines and whole-layer rows)")
    for name in ("coarse-to-fine", "gradient"):
        per_item = median[name] / len(items)
        print(f"{name}: {median[name]:.1f} s = {per_item / forward:.2f} full forwards per item")
    print(f"cost_per_head_example={per_head / forward:.3f}")


if __name__ == "__main__":
    main()
