"""Several tasks x methods in one go, plus the paper's sweeps over alpha and the number of heads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import HeadConfigError, SteeringConfigError
from attnsteer.evaluation.methods import expand_methods, get_method
from attnsteer.evaluation.runner import EvalResult, evaluate
from attnsteer.heads import HeadConfig, HeadSpec, read_head_file
from attnsteer.steerer import Steerer
from attnsteer.steering.config import SteeringConfig


@dataclass
class EvaluationReport:
    """The table's runs (first alpha, all heads) and the sweep points behind the figures."""

    results: list[EvalResult]
    alpha_sweep: list[dict[str, Any]] = field(default_factory=list)
    num_heads_sweep: list[dict[str, Any]] = field(default_factory=list)


def run_evaluation(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tasks: Sequence[str], methods: Sequence[str],
    heads: HeadSpec | None = None, steering: Sequence[SteeringConfig] = (SteeringConfig(),),
    num_heads: Sequence[int] = (), **options: Any,
) -> EvaluationReport:
    """Every task under every method with `steering[0]`; with several steering configs (an alpha sweep)
    or head counts, the steered methods again at each value (the non-steered ones do not depend on them).

    options: passed on to `evaluate` (limit, split, k_shot, batch_size, data_file, ...).
    """
    if not steering:
        raise SteeringConfigError("run_evaluation needs at least one SteeringConfig")
    methods = expand_methods(methods)
    steerer = Steerer(model, tokenizer, heads=heads, config=steering[0], markup=None)
    report = EvaluationReport([evaluate(model, tokenizer, task, method, steerer=steerer, **options)
                               for task in tasks for method in methods])
    steered = [method for method in methods if get_method(method).steers] or ["pasta"]
    if len(steering) > 1:
        # The table's runs already are the sweep's points at the first config.
        table_runs = {(result.task, result.method): result.metrics for result in report.results}
        for config in steering:
            variant = steerer.with_options(alpha=config.alpha, mode=config.mode)
            known = table_runs if config == steering[0] else {}
            report.alpha_sweep += _points(model, tokenizer, tasks, steered, variant, "alpha", config.alpha, options,
                                          known)
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
    """Heads as "L.H" in ranked order: a comma list keeps its order, a head file gives its ranking
    (`heads.read_head_file`: a ranking list, or a mapping in file order), a HeadConfig its layer order."""
    if isinstance(spec, HeadConfig):
        return str(spec).split(",")
    if isinstance(spec, (str, Path)) and str(spec).endswith(".json"):
        return list(read_head_file(spec).ranking)
    if isinstance(spec, str):
        return [item.strip() for item in spec.split(",") if item.strip()]
    raise HeadConfigError(f"--num-heads needs a ranked head list ('L.H,...' or a JSON list), got {spec!r}")
