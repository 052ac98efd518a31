"""Several tasks x methods in one go, plus the paper's sweeps over alpha and the number of heads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import HeadConfigError
from attnsteer.evaluation.methods import expand_methods, uses_steering
from attnsteer.evaluation.runner import EvalResult, evaluate
from attnsteer.heads.head_config import HeadConfig, HeadSpec
from attnsteer.steerer import Steerer


@dataclass
class EvaluationReport:
    """The table's runs (first alpha, all heads) and the sweep points behind the figures."""

    results: list[EvalResult]
    alpha_sweep: list[dict[str, Any]] = field(default_factory=list)
    num_heads_sweep: list[dict[str, Any]] = field(default_factory=list)


def run_evaluation(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tasks: Sequence[str], methods: Sequence[str],
    heads: HeadSpec | None = None, alphas: Sequence[float] = (0.01,), num_heads: Sequence[int] = (),
    **options: Any,
) -> EvaluationReport:
    """Every task under every method; with several alphas or head counts, the steered methods again
    at each value (the non-steered ones do not depend on them)."""
    methods = expand_methods(methods)
    steerer = Steerer(model, tokenizer, heads=heads, alpha=alphas[0], markup=None)
    report = EvaluationReport([evaluate(model, tokenizer, task, method, steerer=steerer, **options)
                               for task in tasks for method in methods])
    steered = [method for method in methods if uses_steering(method)] or ["pasta"]
    if len(alphas) > 1:
        # The table's runs already are the sweep's points at the first alpha.
        table_runs = {(result.task, result.method): result.metrics for result in report.results}
        for alpha in alphas:
            variant = steerer.with_options(alpha=alpha)
            known = table_runs if alpha == alphas[0] else {}
            report.alpha_sweep += _points(model, tokenizer, tasks, steered, variant, "alpha", alpha, options, known)
    if num_heads:
        ranking = ranked_heads(heads if heads is not None else steerer.heads)
        for count in num_heads:
            variant = steerer.with_options(heads=",".join(ranking[:count]))
            report.num_heads_sweep += _points(model, tokenizer, tasks, steered, variant, "num_heads", count, options)
    return report


def _points(model, tokenizer, tasks, methods, steerer, key, value, options, known=None) -> list[dict[str, Any]]:
    """One sweep point per (task, method); `known` holds metrics already measured with this steerer."""
    known = known or {}
    return [{key: value, "task": task, "method": method,
             "metrics": known.get((task, method))
             or evaluate(model, tokenizer, task, method, steerer=steerer, **options).metrics}
            for task in tasks for method in methods]


def ranked_heads(spec: HeadSpec) -> list[str]:
    """Heads as "L.H" in ranked order: a comma list or JSON list keeps its order; a JSON file may hold
    {"ranking": [...]} (a profile) or {layer: [heads]} (read in file order); a HeadConfig in layer order."""
    if isinstance(spec, HeadConfig):
        return str(spec).split(",")
    if isinstance(spec, (str, Path)) and str(spec).endswith(".json"):
        data = json.loads(Path(spec).read_text())
        if isinstance(data, dict) and "ranking" in data:
            data = data["ranking"]
        if isinstance(data, dict):
            data = [f"{layer}.{head}" for layer, heads in data.items() for head in heads]
        return [str(item) for item in data]
    if isinstance(spec, str):
        return [item.strip() for item in spec.split(",") if item.strip()]
    raise HeadConfigError(f"--num-heads needs a ranked head list ('L.H,...' or a JSON list), got {spec!r}")
