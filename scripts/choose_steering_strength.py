"""Each steering method's strength chosen on the VALID split (docs/results.md, "Steering methods"): the four
Table 1 tasks' first LIMIT valid records per task, the emphasis of the `pasta` evaluation method (the task's
instruction / new fact) steered by each candidate, against zero-shot. Writes one `attnsteer eval`-style JSON
(every candidate as a run named by its method) and prints the Table 1 layout with each candidate's average.

The shipped PASTA heads of each model are a candidate too; the best profiling-free candidate per model is
what the test-split comparison then uses. Test records are never read here.

Run: .venv/bin/python scripts/choose_steering_strength.py --model smollm2-135m-instruct --limit 10
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from attnsteer import Steerer, load_model
from attnsteer.chat import resolve_chat
from attnsteer.evaluation import evaluate, results_markdown, results_table, write_json

TASKS = ("counterfact", "biasbios", "json_format", "pronoun_change")
# (evaluation method, its strength): every candidate reads the `pasta` method's prompt and emphasis.
CANDIDATES: tuple[tuple[str, dict[str, object]], ...] = (
    ("pasta", {}),
    ("instaboost", {"boost": 3.0}),
    ("instaboost", {"boost": 10.0}),
    ("spotlight", {"target": 0.3, "granularity": "layer"}),
    ("spotlight", {"target": 0.6, "granularity": "layer"}),
    ("spotlight", {"target": 0.3, "granularity": "head"}),
    ("spotlight", {"target": 0.6, "granularity": "head"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an embedded model's name (default: Gemma 3 270M)")
    parser.add_argument("--limit", type=int, default=10, help="valid records per task")
    parser.add_argument("--out", default="docs/results/methods")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    chat = resolve_chat("auto", tokenizer)
    base = Steerer(model, tokenizer, markup=None)
    runs = []
    options = {"split": "valid", "limit": args.limit, "chat": chat, "progress": False, "batch_size": 16}
    for task in TASKS:
        runs.append(evaluate(model, tokenizer, task, "zero-shot", steerer=base, **options))
        for method, strength in CANDIDATES:
            result = evaluate(model, tokenizer, task, method, steerer=base, **strength, **options)  # type: ignore[arg-type]
            label = base.with_options(**result.config["steering"]).method.describe()
            runs.append(replace(result, method=label))
            print(f"{task} {label}: {result.metrics}", flush=True)
    name = args.model or "gemma-3-270m-q4_k_m"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(runs, Path(args.out) / f"valid_{name}.json")
    header, rows = results_table(runs)
    command = f"python scripts/choose_steering_strength.py --model {name} --limit {args.limit}"
    table = results_markdown(header, rows, f"Command: `{command}` (valid split{', chat template' if chat else ''})")
    (Path(args.out) / f"valid_{name}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
