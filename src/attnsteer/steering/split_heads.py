"""The prefill fast path: no [batch, heads, queries, keys] tensor, the stock sdpa kernel for every head.

A steered layer's heads are split in two groups:
- unsteered heads run exactly the stock sdpa call (causal flag or the stock mask);
- steered heads fold the bias into the scores through extra key dimensions: with
  q' = [q, 1, 1, 0...] and k'_j = [k_j, hi_j, lo_j, 0...] where hi_j + lo_j = b_j / scale,
  scale * (q' . k'_j) = scale * (q . k_j) + b_j. The same causal/sliding/padding handling then
  applies, with no mask materialised. hi/lo split b_j / scale into two numbers of the key's dtype,
  so the bias keeps about twice the dtype's precision (bf16 included). The dims are padded to a
  multiple of 8 (the value too) so the fast kernels accept them.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

EXTRA_DIMS = 8


def split_heads_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    bias: torch.Tensor,
    steered: torch.Tensor,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query: [batch, heads, queries, dim]; key/value: [batch, kv_heads, keys, dim];
    bias: [batch or 1, heads, 1, keys]; steered: [n] long, the heads with a bias.
    Returns ([batch, queries, heads, dim], None) like transformers' sdpa_attention_forward.
    """
    num_heads, head_dim = query.shape[1], query.shape[-1]
    scale = scaling if scaling is not None else head_dim**-0.5
    unsteered = _other_heads(steered, num_heads)
    output = query.new_empty(query.shape[0], query.shape[2], num_heads, value.shape[-1])
    if unsteered.numel():
        q, k, v = select_heads(query, key, value, unsteered)
        output[:, :, unsteered] = stock_sdpa(module, q, k, v, attention_mask, scale, **kwargs)
    q, k, v = select_heads(query, key, value, steered)
    q, k, v = _fold_bias(q, k, v, bias[:, steered, 0, :], scale)
    output[:, :, steered] = stock_sdpa(module, q, k, v, attention_mask, scale, **kwargs)[..., : value.shape[-1]]
    return output, None


def _other_heads(steered: torch.Tensor, num_heads: int) -> torch.Tensor:
    keep = torch.ones(num_heads, dtype=torch.bool, device=steered.device)
    keep[steered] = False
    return keep.nonzero().flatten()


def select_heads(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The query heads `heads` and, for each, its key/value head (GQA: query head h reads kv head h // groups)."""
    kv_heads = heads // (query.shape[1] // key.shape[1])
    return query[:, heads], key[:, kv_heads], value[:, kv_heads]


def _fold_bias(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append EXTRA_DIMS dims: q gets [1, 1, 0...], k gets [hi, lo, 0...] (hi + lo = bias / scale), v gets zeros.

    bias: [batch or 1, heads, keys] float32.
    """
    batch, heads, queries, _ = query.shape
    keys = key.shape[2]
    column = (bias.float() / scale).expand(batch, heads, keys)
    high = column.to(key.dtype)
    low = (column - high.float()).to(key.dtype)
    key_extra = key.new_zeros(batch, heads, keys, EXTRA_DIMS)
    key_extra[..., 0], key_extra[..., 1] = high, low
    query_extra = query.new_zeros(batch, heads, queries, EXTRA_DIMS)
    query_extra[..., :2] = 1
    value_extra = value.new_zeros(batch, heads, keys, EXTRA_DIMS)
    return (torch.cat([query, query_extra], -1), torch.cat([key, key_extra], -1),
            torch.cat([value, value_extra], -1))


def stock_sdpa(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, scale: float, **kwargs: Any,
) -> torch.Tensor:
    """transformers' own sdpa call (causal flag, masks, static-cache slicing) on already-grouped heads."""
    as_mha = SimpleNamespace(num_key_value_groups=1, is_causal=getattr(module, "is_causal", True),
                             training=module.training)
    output, _ = sdpa_attention_forward(as_mha, query, key, value, attention_mask, scaling=scale, **kwargs)
    return output
