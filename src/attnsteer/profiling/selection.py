"""From per-task head scores to one head set: per-task top-k, then intersection, union or one task.

Pure functions on score matrices [layers, heads] (no model), so the logic is tested by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from attnsteer.errors import AttnsteerError
from attnsteer.heads import HeadConfig

RULES = ("intersection", "union", "task")
DEFAULT_K_GRID = (2, 4, 8, 12, 16, 24, 32)
Head = tuple[int, int]


class SelectionError(AttnsteerError):
    """A selection rule, k or task that cannot be applied."""


def rank_heads(head_scores: torch.Tensor, layer_scores: torch.Tensor | None = None) -> list[Head]:
    """(layer, head) pairs by score, best first. Unscored (NaN) heads come last, by their layer's score."""
    layers, heads = head_scores.shape
    pairs = [(layer, head) for layer in range(layers) for head in range(heads)]

    def key(pair: Head) -> tuple[int, float, float]:
        value = float(head_scores[pair])
        if math.isnan(value):
            fallback = float(layer_scores[pair[0]]) if layer_scores is not None else -math.inf
            return (1, -fallback, pair[1])
        return (0, -value, 0.0)

    return sorted(pairs, key=key)


def top_k(ranking: Sequence[Head], k: int) -> set[Head]:
    if k < 1:
        raise SelectionError(f"k must be >= 1, got {k}")
    return set(ranking[:k])


def select_heads(rankings: Mapping[str, Sequence[Head]], k: int, rule: str, task: str | None = None) -> set[Head]:
    """Combine each task's top-k heads.

    rule: "intersection" (the paper's multi-task set: heads in every task's top-k), "union", or
    "task" (the top-k of `task` alone).
    """
    if rule not in RULES:
        raise SelectionError(f"unknown selection rule {rule!r}; choose one of {', '.join(RULES)}")
    if not rankings:
        raise SelectionError("no task rankings to select from")
    if rule == "task":
        if task not in rankings:
            raise SelectionError(f"rule 'task' needs one of the profiled tasks ({', '.join(rankings)}), got {task!r}")
        return top_k(rankings[task], k)
    sets = [top_k(ranking, k) for ranking in rankings.values()]
    return set.intersection(*sets) if rule == "intersection" else set.union(*sets)


def heads_for_count(
    rankings: Mapping[str, Sequence[Head]], count: int, rule: str, task: str | None = None,
) -> set[Head]:
    """The smallest k whose selection holds at least `count` heads, trimmed to `count` by mean rank."""
    total = len(next(iter(rankings.values())))
    if not 1 <= count <= total:
        raise SelectionError(f"--num-heads must be in 1..{total}, got {count}")
    for k in range(1, total + 1):
        chosen = select_heads(rankings, k, rule, task)
        if len(chosen) >= count:
            return set(sorted(chosen, key=lambda head: mean_rank(rankings, head))[:count])
    raise SelectionError(f"no k gives {count} heads with rule {rule!r}")


def mean_rank(rankings: Mapping[str, Sequence[Head]], head: Head) -> float:
    return sum(list(ranking).index(head) for ranking in rankings.values()) / len(rankings)


def choose_k(rankings: Mapping[str, Sequence[Head]], grid: Sequence[int], rule: str,
             objective: Callable[[set[Head]], float], task: str | None = None) -> tuple[int, dict[int, float]]:
    """The k in `grid` whose selection maximises `objective` (the paper cross-validates k).

    Empty selections are skipped; if every k in the grid gives an empty set, the grid is extended by
    doubling its largest k (up to every head) until one does not. Selections equal to a smaller k's
    are not re-evaluated; ties go to the smaller set. Returns (best k, {k: objective value}).
    """
    values: dict[int, float] = {}
    seen: dict[frozenset[Head], float] = {}
    total = len(next(iter(rankings.values()))) if rankings else 0
    ks = sorted(set(grid))
    while ks and all(not select_heads(rankings, k, rule, task) for k in ks) and ks[-1] < total:
        ks.append(min(2 * ks[-1], total))
    for k in ks:
        chosen = frozenset(select_heads(rankings, k, rule, task))
        if not chosen:
            continue
        if chosen not in seen:
            seen[chosen] = objective(set(chosen))
        values[k] = seen[chosen]
    if not values:
        raise SelectionError(f"every k in {sorted(grid)} gives an empty {rule} of the tasks' top-k heads")
    best = max(values, key=lambda k: (values[k], -len(select_heads(rankings, k, rule, task)), -k))
    return best, values


def to_head_config(heads: set[Head]) -> HeadConfig:
    if not heads:
        raise SelectionError("the selection is empty")
    return HeadConfig.from_pairs(heads)
