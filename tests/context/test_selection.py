"""LLMSteer's token selection: accumulation over layers/heads/queries, top-k of both readings."""

from __future__ import annotations

import pytest
import torch

from attnsteer.context import ContextError, LLMSteerConfig, prepare_context, select_tokens
from attnsteer.context.selection import AttentionTotals, attention_received
from tests.context.conftest import CONTEXT


def hand_made_weights() -> torch.Tensor:
    """[1, heads=2, queries=3, keys=5]: head 0 looks at keys 1 and 3, head 1 at key 4."""
    weights = torch.zeros(1, 2, 3, 5)
    weights[0, 0, :, 1], weights[0, 0, :, 3] = 0.6, 0.4
    weights[0, 1, :, 4] = 1.0
    return weights


def test_totals_sum_over_queries_heads_and_chosen_layers():
    totals = AttentionTotals(layers=None, heads=None)
    totals.add(0, hand_made_weights())
    totals.add(1, hand_made_weights())
    assert torch.allclose(totals.totals, torch.tensor([0.0, 3.6, 0.0, 2.4, 6.0]))
    only_head0_layer1 = AttentionTotals(layers=[1], heads=[0])
    only_head0_layer1.add(0, hand_made_weights())
    only_head0_layer1.add(1, hand_made_weights())
    assert torch.allclose(only_head0_layer1.totals, torch.tensor([0.0, 1.8, 0.0, 1.2, 0.0]))
    assert only_head0_layer1.seen == {1}


def test_top_k_of_both_readings():
    first = torch.tensor([0.0, 1.8, 0.1, 1.2, 0.0])  # top-2: 1, 3
    second = torch.tensor([0.0, 0.2, 0.1, 2.0, 3.0])  # top-2: 3, 4
    assert select_tokens([first, second], 2).tolist() == [False, False, False, True, False]
    assert select_tokens([first, second], 3).tolist() == [False, True, False, True, False]  # 1,3,2 & 4,3,1
    assert select_tokens([first, second], 5).all()
    with pytest.raises(ContextError, match="k must be a positive"):
        select_tokens([first, second], 0)


def test_recorded_attention_is_a_sum_of_probabilities(tiny_steerer):
    model = tiny_steerer.model
    ids = tiny_steerer.tokenizer(CONTEXT, return_tensors="pt")["input_ids"]
    before = model.config._attn_implementation
    every = attention_received(model, ids, LLMSteerConfig())
    tokens = ids.shape[1]
    # each query's probabilities sum to 1: 3 layers x 4 heads x tokens queries in all
    assert every.shape == (tokens,) and every.sum().item() == pytest.approx(3 * 4 * tokens, rel=1e-4)
    one = attention_received(model, ids, LLMSteerConfig(layers=(1,), heads=(0, 2)))
    assert one.sum().item() == pytest.approx(2 * tokens, rel=1e-4)
    assert model.config._attn_implementation == before


def test_llmsteer_emphasis_skips_the_bos_and_keeps_k(tiny_steerer):
    everything = prepare_context(tiny_steerer, CONTEXT, "llmsteer", llmsteer=LLMSteerConfig(top_fraction=1.0))
    assert everything.emphasis_mask[0].tolist() == [False] + [True] * (everything.num_tokens - 1)
    few = prepare_context(tiny_steerer, CONTEXT, "llmsteer", llmsteer=LLMSteerConfig(top_k=5))
    assert 1 <= int(few.emphasis_mask.sum()) <= 5 and not few.emphasis_mask[0, 0]


@pytest.mark.parametrize(("fields", "message"), [
    ({"top_k": 0}, "top_k must be a positive integer"),
    ({"top_k": -3}, "top_k must be a positive integer"),
    ({"top_fraction": 0.0}, r"top_fraction must be in \(0, 1\]"),
    ({"prefixes": ("only one",)}, "exactly two non-empty prefix prompts"),
    ({"layers": ()}, "layers must be None"),
    ({"heads": (-1,)}, "heads must be None"),
])
def test_bad_llmsteer_settings(fields, message):
    with pytest.raises(ContextError, match=message):
        LLMSteerConfig(**fields)
