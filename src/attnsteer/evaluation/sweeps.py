"""Several tasks x methods in one go, plus sweeps: the paper's over alpha and the number of heads, and over the
other methods' strengths (instaboost's boost, spotlight's target, spa's strength)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import HeadConfigError, SteeringConfigError
from attnsteer.evaluation.methods import check_parameters_used, expand_methods, methods_using
from attnsteer.evaluation.runner import EvalResult, evaluate
from attnsteer.heads import HeadConfig, HeadSpec, read_head_file
from attnsteer.steerer import Steerer
from attnsteer.steering.config import SteeringConfig

# The sweeps `run_evaluation` runs, by the parameter swept (a report's sweeps, the JSON's "<parameter>_sweep").
SWEPT_PARAMETERS = ("alpha", "num_heads", "boost", "target", "spa_strength")


@dataclass
class EvaluationReport:
    """The table's runs (each parameter's first value, all heads) and the sweep points behind the figures:
    sweeps[parameter] = [{parameter: value, "task": ..., "method": ..., "metrics": {...}}, ...]."""

    results: list[EvalResult]
    sweeps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def alpha_sweep(self) -> list[dict[str, Any]]:
        return self.sweeps.get("alpha", [])

    @property
    def num_heads_sweep(self) -> list[dict[str, Any]]:
        return self.sweeps.get("num_heads", [])

    def sweeps_json(self) -> dict[str, list[dict[str, Any]]]:
        """{"alpha_sweep": [...], "num_heads_sweep": [...], "boost_sweep": ...}: every sweep, empty when not run."""
        return {f"{name}_sweep": self.sweeps.get(name, []) for name in SWEPT_PARAMETERS}


def run_evaluation(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tasks: Sequence[str], methods: Sequence[str],
    heads: HeadSpec | None = None, steering: Sequence[SteeringConfig] = (SteeringConfig(),),
    num_heads: Sequence[int] = (), boost: Sequence[float] = (), target: Sequence[float] = (),
    granularity: str | None = None, spa_strength: Sequence[float] = (), **options: Any,
) -> EvaluationReport:
    """Every task under every method with each parameter's first value; with several values of one, the methods
    that depend on it again at each value (`EvalMethod.parameters`; the others do not change).

    steering: PASTA's alpha and mode (several: an alpha sweep); num_heads: the top-n heads of the ranked `heads`;
    boost: instaboost; target (and granularity): spotlight; spa_strength: spa. An empty boost / target /
    spa_strength uses the method's default; given for none of `methods`, an error.
    options: passed on to `evaluate` (limit, split, k_shot, batch_size, data_file, ...).
    """
    if not steering:
        raise SteeringConfigError("run_evaluation needs at least one SteeringConfig")
    methods = expand_methods(methods)
    swept = {"boost": list(boost), "target": list(target), "spa_strength": list(spa_strength)}
    check_parameters_used(methods, {**swept, "granularity": granularity})
    steerer = Steerer(model, tokenizer, markup=None, heads=heads)  # no heads: the model's default method
    base = {"heads": heads, "alpha": steering[0].alpha, "mode": steering[0].mode, "granularity": granularity,
            **{name: values[0] if values else None for name, values in swept.items()}}

    def run(task: str, method: str, **parameters: Any) -> EvalResult:
        return evaluate(model, tokenizer, task, method, steerer=steerer, **{**base, **parameters}, **options)

    report = EvaluationReport([run(task, method) for task in tasks for method in methods])
    table = {(result.task, result.method): result.metrics for result in report.results}
    # parameter -> its points, each (what the sweep records, what evaluate is given)
    sweeps = {"alpha": [({"alpha": c.alpha}, {"alpha": c.alpha, "mode": c.mode}) for c in steering],
              **{name: [({name: value}, {name: value}) for value in values] for name, values in swept.items()}}
    if num_heads:
        ranking = ranked_heads(heads if heads is not None else steerer.with_options(method="pasta").heads)
        sweeps["num_heads"] = [({"num_heads": count}, {"heads": ",".join(ranking[:count])}) for count in num_heads]
    for name, points in sweeps.items():
        if len(points) > 1 or name == "num_heads":
            users = methods_using("heads" if name == "num_heads" else name, methods) or ["pasta"]
            known = {} if name == "num_heads" else table  # the table ran each parameter's first value
            report.sweeps[name] = _sweep(run, tasks, users, points, known)
    return report


def _sweep(run: Callable[..., EvalResult], tasks: Sequence[str], methods: Sequence[str],
           points: list[tuple[dict[str, Any], dict[str, Any]]], known: dict[tuple[str, str], dict[str, float]],
           ) -> list[dict[str, Any]]:
    """One point per (value, task, method): {label..., "task", "method", "metrics"}; the first value's metrics
    come from `known` where it has them."""
    return [{**label, "task": task, "method": method,
             "metrics": (known if index == 0 else {}).get((task, method)) or run(task, method, **parameters).metrics}
            for index, (label, parameters) in enumerate(points) for task in tasks for method in methods]


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
