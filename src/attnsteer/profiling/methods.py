"""The three ways to rank heads for one task; each returns a `TaskProfile`.

- exhaustive (the paper): every head steered alone on every item, plus every whole layer.
- coarse_to_fine: every whole layer first; then the single heads of the best layers only.
- gradient: d(score)/d(beta_h) at beta = 0 for all heads from one forward + backward per item.
A head's score is its mean gain over the items: steered score - unsteered score (see `items.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from attnsteer.errors import AttnsteerError
from attnsteer.profiling.items import ProfileItem
from attnsteer.profiling.scorer import HeadScorer

METHODS = ("exhaustive", "coarse-to-fine", "gradient")
Progress = Callable[[int], None]


class UnknownProfileMethodError(AttnsteerError):
    """A profiling method name that is not one of METHODS."""


@dataclass
class TaskProfile:
    """How much steering each head (and each whole layer) helps one task.

    head_scores: [layers, heads] float, mean gain per item of steering that head alone (gradient: the
        mean derivative); NaN for heads a method did not score (coarse-to-fine outside its best layers).
    layer_scores: [layers] float, mean gain of steering the whole layer, or None (gradient).
    """

    task: str
    method: str
    head_scores: torch.Tensor
    layer_scores: torch.Tensor | None
    num_items: int
    skipped: list[str] = field(default_factory=list)
    baseline: float = float("nan")
    seconds: float = 0.0

    def ranking(self) -> list[tuple[int, int]]:
        """(layer, head) pairs, best first; heads with no score last, ordered by their layer's score."""
        from attnsteer.profiling.selection import rank_heads

        return rank_heads(self.head_scores, self.layer_scores)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UnknownProfileMethodError(f"unknown profiling method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def work_units(method: str, num_items: int, num_layers: int, top_layers: int) -> int:
    """How many progress steps `profile_task` reports (for the progress bar's total)."""
    if method == "gradient":
        return num_items
    if method == "exhaustive":
        return num_items * num_layers
    return num_items * (num_layers + min(top_layers, num_layers))


def profile_task(scorer: HeadScorer, task: str, items: Sequence[ProfileItem], method: str,
                 top_layers: int = 3, progress: Progress | None = None) -> TaskProfile:
    """Rank the heads of `scorer.model` for one task's items with `method`."""
    check_method(method)
    if not items:
        raise AttnsteerError(f"task {task!r} has no usable items to profile")
    step = progress or (lambda n: None)
    started = time.perf_counter()
    runner = {"exhaustive": _exhaustive, "coarse-to-fine": _coarse_to_fine, "gradient": _gradient}[method]
    head_scores, layer_scores, baseline = runner(scorer, items, step, top_layers)
    return TaskProfile(task, method, head_scores, layer_scores, len(items), baseline=baseline,
                       seconds=time.perf_counter() - started)


def _exhaustive(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int):
    layers, heads = scorer.num_layers, scorer.num_heads
    rows = torch.cat([torch.eye(heads), torch.ones(1, heads)])  # each head alone, then the whole layer
    gains = torch.zeros(layers, heads + 1)
    baselines = []
    for item in items:
        baseline = scorer.baseline(item)
        baselines.append(baseline.score)
        for layer in range(layers):
            gains[layer] += scorer.score_layer(item, baseline, layer, rows) - baseline.score
            step(1)
    gains /= len(items)
    return gains[:, :heads], gains[:, heads], _mean(baselines)


def _coarse_to_fine(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int):
    layers, heads = scorer.num_layers, scorer.num_heads
    layer_gains = torch.zeros(layers)
    baselines = [scorer.baseline(item) for item in items]
    for item, baseline in zip(items, baselines, strict=True):
        for layer in range(layers):
            layer_gains[layer] += float(scorer.score_layer(item, baseline, layer, torch.ones(1, heads))[0])
            layer_gains[layer] -= baseline.score
            step(1)
    layer_gains /= len(items)
    best = layer_gains.argsort(descending=True)[:top_layers].tolist()
    head_scores = torch.full((layers, heads), float("nan"))
    for layer in best:
        head_scores[layer] = 0.0
    for item, baseline in zip(items, baselines, strict=True):
        for layer in best:
            gains = scorer.score_layer(item, baseline, layer, torch.eye(heads)) - baseline.score
            head_scores[layer] += gains / len(items)
            step(1)
    return head_scores, layer_gains, _mean([b.score for b in baselines])


def _gradient(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int):
    total = torch.zeros(scorer.num_layers, scorer.num_heads)
    baselines = []
    for item in items:
        gradient, unsteered = scorer.gradient(item)
        total += gradient
        baselines.append(unsteered)
        step(1)
    return total / len(items), None, _mean(baselines)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
