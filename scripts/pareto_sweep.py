"""The steering methods' strength sweeps as a trade-off (docs/results.md, "Strength against fluency"): on the
VALID split of CounterFact, each method at each strength (PASTA's alpha on the model's shipped heads,
InstABoost's boost, Spotlight's target at both granularities), the knowledge-conflict metric (the mean of
efficacy and paraphrase, in %) against the fluency of its generations (bits; zero-shot as the reference).

Writes pareto_<model>.json (every point's metrics) and pareto_<model>.png (one line per method).
Run: .venv/bin/python scripts/pareto_sweep.py --model smollm2-135m-instruct --limit 20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from attnsteer import Steerer, load_model
from attnsteer.chat import resolve_chat
from attnsteer.evaluation import evaluate
from attnsteer.plots.evaluation import plot_pareto

# method label -> (evaluation method, the swept parameter, its values, fixed parameters)
SWEEPS: dict[str, tuple[str, str, tuple[float, ...], dict[str, Any]]] = {
    "pasta (alpha)": ("pasta", "alpha", (0.001, 0.01, 0.1, 0.5), {}),
    "instaboost (boost)": ("instaboost", "boost", (1.5, 3.0, 10.0, 30.0), {}),
    "spotlight-head (target)": ("spotlight", "target", (0.1, 0.2, 0.3, 0.6, 0.9), {"granularity": "head"}),
    "spotlight-layer (target)": ("spotlight", "target", (0.1, 0.2, 0.3, 0.6, 0.9), {"granularity": "layer"}),
}
TASK = "counterfact"


def point(label: str, strength: float, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
    """One sweep point: the knowledge-conflict score (mean of efficacy and paraphrase) and fluency."""
    return {"method": label, "strength": strength, "conflict": (metrics["efficacy"] + metrics["paraphrase"]) / 2,
            "fluency": metrics["fluency"], "metrics": metrics, "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an embedded model's name (default: Gemma 3 270M)")
    parser.add_argument("--limit", type=int, default=20, help="valid CounterFact records")
    parser.add_argument("--out", default="docs/results/methods")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    steerer = Steerer(model, tokenizer, markup=None)
    options = {"split": "valid", "limit": args.limit, "chat": resolve_chat("auto", tokenizer), "progress": False,
               "batch_size": 16, "steerer": steerer}
    zero = evaluate(model, tokenizer, TASK, "zero-shot", **options)
    points = [point("zero-shot", 0.0, zero.metrics, zero.seconds)]
    for label, (method, parameter, values, fixed) in SWEEPS.items():
        for value in values:
            result = evaluate(model, tokenizer, TASK, method, **{parameter: value}, **fixed, **options)
            points.append(point(label, value, result.metrics, result.seconds))
            print(json.dumps(points[-1]), flush=True)
    name = args.model or "gemma-3-270m-q4_k_m"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"task": TASK, "split": "valid", "limit": args.limit, "model": name,
              "pasta": steerer.method.to_dict() if steerer.method.name == "pasta" else None}
    (out / f"pareto_{name}.json").write_text(json.dumps({"config": config, "points": points}, indent=1) + "\n")
    plot_pareto(points, "fluency", "conflict", out / f"pareto_{name}.png")
    for entry in points:
        print(f"{entry['method']:26s} {entry['strength']:>6g}  conflict {entry['conflict']:6.2f}  "
              f"fluency {entry['fluency']:.2f}")


if __name__ == "__main__":
    main()
