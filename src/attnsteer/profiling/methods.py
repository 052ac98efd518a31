"""The three ways to rank heads for one task; each returns a `TaskProfile`.

- exhaustive (the paper): every head steered alone on every item, plus every whole layer.
- coarse_to_fine: every whole layer first; then the single heads of the best layers only.
- gradient: d(score)/d(beta_h) at beta = 0 for all heads from one forward + backward per item.
A head's score is its mean gain over the items: steered score - unsteered score (see `items.py`).
Under torchrun the ranks share out the (batch, layer) scorings and the gradient batches (`distributed.sharded_map`)
and add the gathered sums in the one-process order, batch by batch, so every rank's scores equal one process's.
Each is a `ProfileMethod`, registered once at the bottom of this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from attnsteer.distributed import sharded_map
from attnsteer.errors import AttnsteerError
from attnsteer.profiling.batching import ItemBatch, group_items, make_batch
from attnsteer.profiling.items import ProfileItem
from attnsteer.profiling.scorer import Baseline, HeadScorer
from attnsteer.registry import Registry

Progress = Callable[[int], None]
# (head_scores [layers, heads], layer_scores [layers] or None, mean unsteered score)
Scores = tuple[torch.Tensor, torch.Tensor | None, float]
Unit = tuple[int, int]  # (batch index, layer): one forward scoring the variants of that layer on that batch


class UnknownProfileMethodError(AttnsteerError):
    """A profiling method name that is not registered (see `profile_method_names`)."""


@dataclass(frozen=True)
class ProfileMethod:
    """One way to rank the heads.

    name: its name (`ProfileConfig.method`, `attnsteer profile --method`).
    run: (scorer, items, progress, top_layers) -> `Scores`; calls progress(n) as n items are done.
    steps_per_item: (num_layers, top_layers) -> progress steps `run` reports per item (the bar's total).
    """

    name: str
    run: Callable[[HeadScorer, Sequence[ProfileItem], Progress, int], Scores]
    steps_per_item: Callable[[int, int], int]


_PROFILING_METHODS: Registry[ProfileMethod] = Registry("profiling method", UnknownProfileMethodError)


def register_profile_method(method: ProfileMethod) -> ProfileMethod:
    """Make `method` available by its name (a name taken by another method is a ValueError)."""
    return _PROFILING_METHODS.register(method.name, method)


def get_profile_method(name: str) -> ProfileMethod:
    """The method registered as `name`; an unknown name raises UnknownProfileMethodError with the allowed."""
    return _PROFILING_METHODS.get(name)


def profile_method_names() -> list[str]:
    """The registered profiling methods, in registration order."""
    return _PROFILING_METHODS.names()


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


def work_units(method: str, num_items: int, num_layers: int, top_layers: int) -> int:
    """How many progress steps `profile_task` reports (for the progress bar's total)."""
    return num_items * get_profile_method(method).steps_per_item(num_layers, top_layers)


def profile_task(scorer: HeadScorer, task: str, items: Sequence[ProfileItem], method: str,
                 top_layers: int = 3, progress: Progress | None = None) -> TaskProfile:
    """Rank the heads of `scorer.model` for one task's items with `method`."""
    spec = get_profile_method(method)
    if not items:
        raise AttnsteerError(f"task {task!r} has no usable items to profile")
    step = progress or (lambda n: None)
    started = time.perf_counter()
    head_scores, layer_scores, baseline = spec.run(scorer, items, step, top_layers)
    return TaskProfile(task, method, head_scores, layer_scores, len(items), baseline=baseline,
                       seconds=time.perf_counter() - started)


def _exhaustive(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int) -> Scores:
    layers, heads = scorer.num_layers, scorer.num_heads
    rows = torch.cat([torch.eye(heads), torch.ones(1, heads)])  # each head alone, then the whole layer
    baselines = _Baselines(scorer, _batches(scorer, items, variants=heads + 1), keep=1)

    def gains_of(unit: Unit) -> tuple[torch.Tensor, list[float]]:
        """[heads + 1] summed gains of the unit's batch and layer; the batch's unsteered scores with layer 0."""
        batch, baseline = baselines.get(unit[0])
        gains = (scorer.score_layer(batch, baseline, unit[1], rows) - baseline.scores[:, None]).sum(0)
        step(batch.size)
        return gains.cpu(), baseline.scores.tolist() if unit[1] == 0 else []

    gains = torch.zeros(layers, heads + 1)
    unsteered: list[float] = []
    units = baselines.units(range(layers))
    for (_, layer), (summed, scores) in zip(units, sharded_map(gains_of, units), strict=True):
        gains[layer] += summed  # batch by batch, as one process adds them
        unsteered += scores
    gains /= len(items)
    return gains[:, :heads], gains[:, heads], _mean(unsteered)


def _coarse_to_fine(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int) -> Scores:
    layers, heads = scorer.num_layers, scorer.num_heads
    baselines = _Baselines(scorer, _batches(scorer, items, variants=heads), keep=None)

    def layer_gain(unit: Unit) -> tuple[torch.Tensor, list[float]]:
        """The summed gain of steering the unit's whole layer; the batch's unsteered scores with layer 0."""
        batch, baseline = baselines.get(unit[0])
        gains = scorer.score_layer(batch, baseline, unit[1], torch.ones(1, heads))[:, 0] - baseline.scores
        step(batch.size)
        return gains.sum().cpu(), baseline.scores.tolist() if unit[1] == 0 else []

    def head_gains(unit: Unit) -> torch.Tensor:
        """[heads] summed gains of steering each head of the unit's layer alone."""
        batch, baseline = baselines.get(unit[0])
        gains = scorer.score_layer(batch, baseline, unit[1], torch.eye(heads)) - baseline.scores[:, None]
        step(batch.size)
        return gains.sum(0).cpu()

    layer_gains = torch.zeros(layers)
    unsteered: list[float] = []
    units = baselines.units(range(layers))
    for (_, layer), (gain, scores) in zip(units, sharded_map(layer_gain, units), strict=True):
        layer_gains[layer] += gain
        unsteered += scores
    layer_gains /= len(items)
    best = layer_gains.argsort(descending=True)[:top_layers].tolist()
    head_scores = torch.full((layers, heads), float("nan"))
    head_scores[best] = 0.0
    units = baselines.units(best)
    for (_, layer), gains in zip(units, sharded_map(head_gains, units), strict=True):
        head_scores[layer] += gains / len(items)
    return head_scores, layer_gains, _mean(unsteered)


def _gradient(scorer: HeadScorer, items: Sequence[ProfileItem], step: Progress, top_layers: int) -> Scores:
    def gradient_of(batch: ItemBatch) -> tuple[torch.Tensor, list[float]]:
        gradient, scores = scorer.gradient(batch)
        step(batch.size)
        return gradient.cpu(), scores.tolist()

    total = torch.zeros(scorer.num_layers, scorer.num_heads)
    unsteered: list[float] = []
    for gradient, scores in sharded_map(gradient_of, _batches(scorer, items, variants=1)):
        total += gradient  # batch by batch, as one process adds them
        unsteered += scores
    return total / len(items), None, _mean(unsteered)


def _batches(scorer: HeadScorer, items: Sequence[ProfileItem], variants: int) -> list[ItemBatch]:
    return [make_batch(group) for group in group_items(items, variants, max_columns=scorer.window)]


class _Baselines:
    """One method's item batches and their unsteered runs (`HeadScorer.baseline`), each computed on this rank
    when a unit first needs it. keep: how many runs to hold at once (None: all of them)."""

    def __init__(self, scorer: HeadScorer, batches: list[ItemBatch], keep: int | None) -> None:
        self.scorer, self.batches, self.keep = scorer, batches, keep
        self._runs: dict[int, Baseline] = {}

    def units(self, layers: Iterable[int]) -> list[Unit]:
        """(batch index, layer) for each batch and each of `layers`, batch by batch: the order gains are added."""
        layers = list(layers)
        return [(index, layer) for index in range(len(self.batches)) for layer in layers]

    def get(self, index: int) -> tuple[ItemBatch, Baseline]:
        """Batch `index` and its unsteered run."""
        if index not in self._runs:
            if self.keep is not None and len(self._runs) >= self.keep:
                del self._runs[next(iter(self._runs))]
            self._runs[index] = self.scorer.baseline(self.batches[index])
        return self.batches[index], self._runs[index]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


register_profile_method(ProfileMethod("exhaustive", _exhaustive, lambda layers, top_layers: layers))
register_profile_method(ProfileMethod("coarse-to-fine", _coarse_to_fine,
                                      lambda layers, top_layers: layers + min(top_layers, layers)))
register_profile_method(ProfileMethod("gradient", _gradient, lambda layers, top_layers: 1))
