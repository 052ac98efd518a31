"""Selection logic on hand-made score matrices (no model)."""

from __future__ import annotations

import math

import pytest
import torch

from attnsteer.profiling.selection import (
    SelectionError,
    choose_k,
    heads_for_count,
    rank_heads,
    select_heads,
    to_head_config,
)

# 2 layers x 3 heads; each task prefers different heads.
SCORES = {
    "a": torch.tensor([[5.0, 4.0, 0.0], [3.0, -1.0, 1.0]]),  # ranking: 0.0 0.1 1.0 1.2 0.2 1.1
    "b": torch.tensor([[4.0, 0.0, 5.0], [3.0, 1.0, -2.0]]),  # ranking: 0.2 0.0 1.0 1.1 0.1 1.2
}
RANKINGS = {task: rank_heads(scores) for task, scores in SCORES.items()}


def test_rank_heads_orders_by_score():
    assert RANKINGS["a"] == [(0, 0), (0, 1), (1, 0), (1, 2), (0, 2), (1, 1)]
    assert RANKINGS["b"] == [(0, 2), (0, 0), (1, 0), (1, 1), (0, 1), (1, 2)]


def test_unscored_heads_rank_last_by_their_layer_score():
    scores = torch.tensor([[math.nan, math.nan], [2.0, -1.0], [math.nan, math.nan]])
    ranking = rank_heads(scores, layer_scores=torch.tensor([0.5, 9.0, 3.0]))
    assert ranking[:2] == [(1, 0), (1, 1)]
    assert ranking[2:] == [(2, 0), (2, 1), (0, 0), (0, 1)]


def test_intersection_union_and_task():
    assert select_heads(RANKINGS, 2, "intersection") == {(0, 0)}
    assert select_heads(RANKINGS, 3, "intersection") == {(0, 0), (1, 0)}
    assert select_heads(RANKINGS, 2, "union") == {(0, 0), (0, 1), (0, 2)}
    assert select_heads(RANKINGS, 2, "task", task="b") == {(0, 2), (0, 0)}
    assert select_heads(RANKINGS, 1, "intersection") == set()


def test_k_grid_picks_the_best_objective_and_prefers_smaller_sets_on_ties():
    def objective(heads):
        return 1.0 if (1, 0) in heads else 0.5

    best, values = choose_k(RANKINGS, [1, 2, 3, 4], "intersection", objective)
    assert 1 not in values  # empty intersection is skipped
    assert values[2] == 0.5 and values[3] == 1.0
    assert best == 3  # k=4 ties (the same two heads); the smaller k wins
    assert values[4] == 1.0


def test_k_grid_is_extended_when_every_intersection_is_empty():
    best, values = choose_k(RANKINGS, [1], "intersection", lambda heads: -len(heads))
    assert 1 not in values and best == 2 and values[2] == -1  # k=2 gives {(0, 0)}


def test_heads_for_count_trims_by_mean_rank():
    chosen = heads_for_count(RANKINGS, 1, "intersection")
    assert chosen == {(0, 0)}
    assert heads_for_count(RANKINGS, 2, "union") == {(0, 0), (0, 2)}


@pytest.mark.parametrize(
    "call",
    [
        lambda: select_heads(RANKINGS, 2, "majority"),
        lambda: select_heads(RANKINGS, 0, "union"),
        lambda: select_heads(RANKINGS, 2, "task", task="c"),
        lambda: heads_for_count(RANKINGS, 7, "union"),
        lambda: to_head_config(set()),
    ],
)
def test_bad_selection_input_raises_clear_errors(call):
    with pytest.raises(SelectionError):
        call()
