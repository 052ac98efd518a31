"""Every method ranks first a head made decisive by construction."""

from __future__ import annotations

import pytest
import torch

from attnsteer.profiling.batching import make_batch
from attnsteer.profiling.items import make_item
from attnsteer.profiling.methods import (
    ProfileMethod,
    UnknownProfileMethodError,
    get_profile_method,
    profile_method_names,
    profile_task,
    register_profile_method,
    work_units,
)
from attnsteer.profiling.scorer import HeadScorer
from attnsteer.tasks import Example
from tests.profiling.test_scorer import PROMPT, SPAN
from tests.tiny_models import tiny_model

DECISIVE = (1, 2)  # (layer, head)


def decisive_model():
    """A tiny Llama whose attention output is zero for every head but DECISIVE (amplified)."""
    model = tiny_model("llama", seed=3)
    head_dim = model.config.head_dim
    with torch.no_grad():
        for index, layer in enumerate(model.model.layers):
            weight = layer.self_attn.o_proj.weight  # [hidden, heads * head_dim]
            keep = torch.zeros_like(weight)
            if index == DECISIVE[0]:
                columns = slice(DECISIVE[1] * head_dim, (DECISIVE[1] + 1) * head_dim)
                keep[:, columns] = 8.0 * weight[:, columns]
            weight.copy_(keep)
    return model


def toy_items(model, tokenizer):
    """Score items whose gold candidate is the one that steering the decisive head favours."""
    scorer = HeadScorer(model)
    items = []
    for index, candidates in enumerate([(" Rome", " Paris"), (" city", " France")]):
        for gold in (0, 1):
            example = Example(id=f"toy/{index}", kind="score", prompt=PROMPT, emphasis=(SPAN,),
                              answer=candidates[gold], candidates=candidates, gold=gold)
            item = make_item(example, tokenizer)
            batch = make_batch([item])
            baseline = scorer.baseline(batch)
            row = torch.zeros(1, scorer.num_heads)
            row[0, DECISIVE[1]] = 1.0
            if float(scorer.score_layer(batch, baseline, DECISIVE[0], row)[0, 0]) > float(baseline.scores[0]) + 0.05:
                items.append(item)
    assert items, "the construction should make steering the decisive head raise some candidate"
    return scorer, items


@pytest.mark.parametrize("method", profile_method_names())
def test_every_method_ranks_the_decisive_head_first(method, tokenizer):
    scorer, items = toy_items(decisive_model(), tokenizer)
    profile = profile_task(scorer, "toy", items, method, top_layers=1)
    assert profile.ranking()[0] == DECISIVE
    others = profile.head_scores.clone()
    others[DECISIVE] = 0.0
    assert float(torch.nan_to_num(others).abs().max()) < 1e-4  # other heads change nothing
    assert float(profile.head_scores[DECISIVE]) > 0.01


def test_unknown_method_and_empty_items_are_clear_errors(tokenizer):
    scorer = HeadScorer(tiny_model("llama"))
    with pytest.raises(UnknownProfileMethodError, match=r"unknown profiling method 'gradients'; choose one of "
                                                        r"'exhaustive', 'coarse-to-fine', 'gradient'; did you mean "
                                                        r"'gradient'\?"):
        profile_task(scorer, "toy", [], "gradients")
    with pytest.raises(Exception, match="no usable items"):
        profile_task(scorer, "toy", [], "gradient")


def test_methods_are_registered_once_with_their_progress_steps():
    assert profile_method_names() == ["exhaustive", "coarse-to-fine", "gradient"]
    # 5 items, 4 layers, the 2 best layers refined by coarse-to-fine
    assert [work_units(name, 5, 4, 2) for name in profile_method_names()] == [5 * 4, 5 * (4 + 2), 5]
    assert work_units("coarse-to-fine", 5, 4, 9) == 5 * (4 + 4)  # never more layers than the model has
    with pytest.raises(ValueError, match="profiling method name 'gradient' is already registered"):
        register_profile_method(ProfileMethod("gradient", get_profile_method("exhaustive").run, lambda n, k: 1))
    assert register_profile_method(get_profile_method("gradient")) is get_profile_method("gradient")
