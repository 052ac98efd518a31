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
from attnsteer.profiling.batching import ItemBatch, group_items, make_batch
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
    unsteered = []
    for batch in _batches(scorer, items, variants=heads + 1):
        baseline = scorer.baseline(batch)
        unsteered += baseline.scores.tolist()
        for layer in range(layers):
            gains[layer] += (scorer.score_layer(batch, baseline, layer, rows) - baseline.scores[:, None]).sum(0)
            step(batch.size)
    gains /= len(items)
    return gains[:, :heads], gains[:, heads], _mean(unsteered)


def _coarse_to_fine(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int):
    layers, heads = scorer.num_layers, scorer.num_heads
    layer_gains = torch.zeros(layers)
    batches = _batches(scorer, items, variants=heads)
    baselines = [scorer.baseline(batch) for batch in batches]
    for batch, baseline in zip(batches, baselines, strict=True):
        for layer in range(layers):
            gains = scorer.score_layer(batch, baseline, layer, torch.ones(1, heads))[:, 0] - baseline.scores
            layer_gains[layer] += gains.sum()
            step(batch.size)
    layer_gains /= len(items)
    best = layer_gains.argsort(descending=True)[:top_layers].tolist()
    head_scores = torch.full((layers, heads), float("nan"))
    head_scores[best] = 0.0
    for batch, baseline in zip(batches, baselines, strict=True):
        for layer in best:
            gains = scorer.score_layer(batch, baseline, layer, torch.eye(heads)) - baseline.scores[:, None]
            head_scores[layer] += gains.sum(0) / len(items)
            step(batch.size)
    return head_scores, layer_gains, _mean([score for b in baselines for score in b.scores.tolist()])


def _gradient(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int):
    total = torch.zeros(scorer.num_layers, scorer.num_heads)
    unsteered = []
    for batch in _batches(scorer, items, variants=1):
        gradient, scores = scorer.gradient(batch)
        total += gradient
        unsteered += scores.tolist()
        step(batch.size)
    return total / len(items), None, _mean(unsteered)


def _batches(scorer: HeadScorer, items: Sequence[ProfileItem], variants: int) -> list[ItemBatch]:
    return [make_batch(group) for group in group_items(items, variants, max_columns=scorer.window)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
