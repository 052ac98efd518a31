"""Spotlight (arXiv 2505.12025) on the stock attention kernels: no attention matrix is materialised.

Per layer and batch row, the share of attention on the emphasised span (`SpotlightTarget`):

1. First pass: the stock sdpa kernel with one extra value column, 1 on span keys and 0 elsewhere, so
   the kernel returns, next to the layer's output, m = sum_j w_ij * 1[j in span] for every head and
   query: the span's current share.
2. The bias c that brings the share to the target p (`spotlight_bias`):
   - "head": each head and query exactly to p: softmax(s + c * 1[span]) puts m e^c / (m e^c + 1 - m) on
     the span, so c = log(p (1 - m) / (m (1 - p))) when 0 < m < p, else 0;
   - "layer" (the reference code's rule): the row's share averaged over heads and queries, m_bar; when
     m_bar < p, c = log(p / m_bar) on every head and query.
3. Second pass, only when some c != 0: the stock kernel again, the bias folded into extra query/key
   dimensions (q gets c / scale, span keys get 1), so scale * (q' . k'_j) = scale * (q . k_j) + c * 1[j in span].
A static bias (PASTA / InstABoost rows of the same batch) is folded into the same extra dimensions, as in
`split_heads.py`. Both passes see the model's own causal, sliding-window and padding masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attnsteer.steering.split_heads import EXTRA_DIMS, select_heads, stock_sdpa
from attnsteer.steering.state import SpotlightLayer


def spotlight_bias(mass: torch.Tensor, layer: SpotlightLayer) -> torch.Tensor:
    """[batch, heads, queries] float32: the score bias to add on span keys.

    mass: [batch, heads, queries] float32, the span's current share of each head's and query's attention.
    """
    mass = mass.float()
    target = layer.target[:, None, None]
    below = (mass > 0) & (mass < target)
    exact = torch.log(target * (1 - mass)) - torch.log(mass * (1 - target))
    head_bias = torch.where(below, exact, torch.zeros_like(mass))
    valid = layer.valid_queries[:, None, :].to(mass.dtype)
    count = (valid.sum(dim=(1, 2)) * mass.shape[1]).clamp(min=1)
    share = (mass * valid).sum(dim=(1, 2)) / count
    row_target = layer.target
    raise_row = (share > 0) & (share < row_target)
    row_bias = torch.where(raise_row, torch.log(row_target / share.clamp(min=1e-30)), torch.zeros_like(share))
    layer_bias = row_bias[:, None, None].expand_as(mass)
    bias = torch.where(layer.per_head[:, None, None], head_bias, layer_bias)
    return torch.where(target > 0, bias, torch.zeros_like(bias))


def spotlight_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    static_bias: torch.Tensor | None,
    layer: SpotlightLayer,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query: [batch, heads, queries, dim]; key/value: [batch, kv_heads, keys, dim];
    static_bias: [batch or 1, heads, 1, keys] or None. Returns ([batch, queries, heads, dim], None)."""
    num_heads, value_dim = query.shape[1], value.shape[-1]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if query.shape[2] == 1:
        return _decode_step(query, key, value, attention_mask, static_bias, layer, scale), None
    q, k, v = select_heads(query, key, value, torch.arange(num_heads, device=query.device))
    static = static_bias[:, :, 0, :] if static_bias is not None else None
    first = stock_sdpa(module, *_extend(q, k, v, scale, static, layer.span, None), attention_mask, scale, **kwargs)
    bias = spotlight_bias(first[..., value_dim].transpose(1, 2), layer)
    if not bool(bias.any()):
        return first[..., :value_dim], None
    second = stock_sdpa(module, *_extend(q, k, v, scale, static, layer.span, bias), attention_mask, scale, **kwargs)
    return second[..., :value_dim], None


def _decode_step(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
    static_bias: torch.Tensor | None, layer: SpotlightLayer, scale: float,
) -> torch.Tensor:
    """One query per row (a decode step): its scores [batch, heads, 1, keys] are no bigger than a PASTA decode
    bias, so they are computed once, in float32, the span's share read from their softmax and the bias added to
    the same scores: no extended copy of the KV cache and no second kernel call (the prefill's two passes would
    copy the whole cache twice per layer and step). GQA heads read their kv head without repeating it.

    attention_mask: None (every key visible), [batch, 1, 1, keys] bool (True = may attend) or float additive.
    Returns [batch, 1, heads, dim] like transformers' sdpa_attention_forward.
    """
    batch, num_heads, _, head_dim = query.shape
    kv_heads, keys = key.shape[1], key.shape[2]
    grouped = query.float().reshape(batch, kv_heads, num_heads // kv_heads, head_dim)  # [batch, kv, group, dim]
    scores = (grouped @ key.float().transpose(-1, -2) * scale).reshape(batch, num_heads, 1, keys)
    if attention_mask is not None:
        mask = attention_mask[..., -1:, :keys]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    if static_bias is not None:
        scores = scores + static_bias.float()
    span = layer.span[:, None, None, :keys]
    bias = spotlight_bias((scores.softmax(dim=-1) * span).sum(dim=-1), layer)  # [batch, heads, 1]
    weights = (scores + bias[..., None] * span).softmax(dim=-1)
    output = weights.reshape(batch, kv_heads, num_heads // kv_heads, keys) @ value.float()
    return output.reshape(batch, num_heads, 1, value.shape[-1]).transpose(1, 2).to(value.dtype)


def spotlight_eager(
    eager: Callable[..., tuple[torch.Tensor, torch.Tensor | None]],
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    float_mask: torch.Tensor,
    layer: SpotlightLayer,
    **kwargs: Any,
) -> torch.Tensor:
    """The float mask [batch, heads or 1, queries, keys] with Spotlight's bias added on span keys, from a
    first run of the model's eager attention (used where probabilities are needed anyway)."""
    _, probabilities = eager(module, query, key, value, float_mask, **kwargs)
    if probabilities is None:
        raise RuntimeError("the model's eager attention returned no probabilities")
    span = layer.span[:, None, None, :]
    bias = spotlight_bias((probabilities.float() * span).sum(dim=-1), layer)
    allowed = float_mask > torch.finfo(float_mask.dtype).min
    return torch.where(allowed, float_mask + (bias[..., None] * span).to(float_mask.dtype), float_mask)


def _extend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, static: torch.Tensor | None,
    span: torch.Tensor, bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append EXTRA_DIMS dims to every head: q [1, 1, c_hi, c_lo, 0...], k [s_hi, s_lo, span, span, 0...],
    v [span, 0...] (hi + lo split a number into two of the tensor's dtype: about twice its precision).

    static: [batch or 1, heads, keys] float32 score bias (or None); span: [batch, keys] float32;
    bias: [batch, heads, queries] float32 Spotlight bias (None: the first pass, no bias).
    """
    batch, heads, queries, _ = query.shape
    keys = key.shape[2]
    key_extra = key.new_zeros(batch, heads, keys, EXTRA_DIMS)
    if static is not None:
        key_extra[..., 0], key_extra[..., 1] = _split(static.float().expand(batch, heads, keys) / scale, key.dtype)
    key_extra[..., 2] = key_extra[..., 3] = span[:, None, :].to(key.dtype)
    query_extra = query.new_zeros(batch, heads, queries, EXTRA_DIMS)
    query_extra[..., :2] = 1
    if bias is not None:
        query_extra[..., 2], query_extra[..., 3] = _split(bias / scale, query.dtype)
    value_extra = value.new_zeros(batch, heads, keys, EXTRA_DIMS)
    value_extra[..., 0] = span[:, None, :].to(value.dtype)
    return (torch.cat([query, query_extra], -1), torch.cat([key, key_extra], -1),
            torch.cat([value, value_extra], -1))


def _split(column: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """column (float32) as high + low parts in `dtype`."""
    high = column.to(dtype)
    return high, (column - high.float()).to(dtype)
