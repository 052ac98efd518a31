"""LLMSteer's token selection: accumulate each context token's attention over two readings, keep
the tokens in the top-k of both.

A reading is one forward pass over `[special tokens] + prefix + context` inside
`steering.reading_attention`: the installed steered attention computes the probabilities (the model's
eager attention) and hands each layer's to an accumulator that adds the attention each key receives,
summed over the chosen heads and all query positions. Nothing model-wide is switched, so a steering
block running in another thread at the same time is unaffected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from attnsteer.context.config import ContextError, LLMSteerConfig
from attnsteer.model_info import model_shape
from attnsteer.steering.activation import reading_attention


class AttentionTotals:
    """Attention received per key position, summed over the accumulated layers, heads and queries.

    layers / heads: which to accumulate (None: all). totals: [keys] float32 once a layer ran.
    """

    def __init__(self, layers: Sequence[int] | None, heads: Sequence[int] | None) -> None:
        self.layers = None if layers is None else set(layers)
        self.heads = None if heads is None else list(heads)
        self.totals: torch.Tensor | None = None
        self.seen: set[int] = set()

    def add(self, layer: int, weights: torch.Tensor) -> None:
        """weights: [1, heads, queries, keys] attention probabilities of one layer."""
        if self.layers is not None and layer not in self.layers:
            return
        picked = weights[:, self.heads] if self.heads is not None else weights
        received = picked.float().sum(dim=(0, 1, 2))
        self.totals = received if self.totals is None else self.totals + received
        self.seen.add(layer)


def attention_received(model: PreTrainedModel, input_ids: torch.Tensor, config: LLMSteerConfig) -> torch.Tensor:
    """[tokens] float32: attention each position of `input_ids` [1, tokens] receives in one reading."""
    totals = AttentionTotals(config.layers, config.heads)
    with torch.inference_mode(), reading_attention(model, totals.add):
        model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), logits_to_keep=1)
    if totals.totals is None:
        raise ContextError("no attention was recorded: the model's attention does not dispatch through "
                           "transformers' AttentionInterface")
    return totals.totals


def select_tokens(readings: Sequence[torch.Tensor], k: int) -> torch.Tensor:
    """[tokens] bool: the tokens in the top-k of every reading.

    readings: one [tokens] float tensor per reading (attention received by each context token).
    Ties at the k-th place are broken by position (torch.topk's order), so exactly k per reading.
    """
    if k <= 0:
        raise ContextError(f"k must be a positive number of tokens, got {k}")
    if not readings or any(r.shape != readings[0].shape or r.dim() != 1 for r in readings):
        raise ContextError("select_tokens needs one or more [tokens] tensors of the same length")
    chosen = torch.ones(readings[0].shape[0], dtype=torch.bool)
    for scores in readings:
        top = torch.zeros_like(chosen)
        top[torch.topk(scores, min(k, scores.shape[0])).indices] = True
        chosen &= top
    return chosen


def llmsteer_emphasis(model: PreTrainedModel, tokenizer: Any, input_ids: torch.Tensor, num_special: int,
                      config: LLMSteerConfig) -> torch.Tensor:
    """[1, n] bool over the context's `input_ids` [1, n]: LLMSteer's emphasised tokens.

    num_special: the leading special tokens of `input_ids` (BOS); each reading is
    `special + prefix + the rest`, and only the rest (the context proper) can be chosen.
    """
    config.validate_for(*model_shape(model))
    context = input_ids[:, num_special:]
    readings = []
    for prefix in config.prefixes:
        prefix_ids = torch.tensor([tokenizer(prefix, add_special_tokens=False)["input_ids"]], dtype=torch.long)
        ids = torch.cat([input_ids[:, :num_special], prefix_ids, context], dim=1)
        readings.append(attention_received(model, ids, config)[-context.shape[1]:])
    chosen = select_tokens(readings, config.k_for(context.shape[1]))
    return torch.cat([torch.zeros(1, num_special, dtype=torch.bool), chosen[None]], dim=1)
