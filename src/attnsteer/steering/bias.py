"""PASTA as an additive attention bias.

Multiplying a head's attention on non-emphasised keys by alpha and renormalising equals adding
log(alpha) to those keys' pre-softmax scores (p'_j = p_j c_j / sum_k p_k c_k with p_j = exp(s_j) / Z
is softmax(s + log c)). The bias depends only on (batch row, head, key), so it is built as
`[batch, heads, 1, keys]` and broadcasts over queries: a per-token part (`token_bias`) times a
per-head part (`head_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from attnsteer.heads.head_config import HeadConfig
from attnsteer.steering.config import SteeringConfig


def token_bias(
    emphasis_mask: torch.Tensor, prompt_mask: torch.Tensor, configs: SteeringConfig | Sequence[SteeringConfig | None],
) -> torch.Tensor:
    """Per-token score bias over the input positions.

    emphasis_mask: [batch, tokens] bool, True on emphasised tokens.
    prompt_mask: [batch, tokens] bool, True on prompt tokens that steering may down-weight
        (not padding, not a continuation being scored).
    configs: one `SteeringConfig` for every row, or one per row (None: that row is not steered).
    Returns [batch, tokens] float32: the row's `outside_bias` on prompt tokens outside the emphasis,
    its `inside_bias` on emphasised tokens, 0 elsewhere. A row with nothing emphasised gets 0
    everywhere (that row runs unsteered).
    """
    rows = emphasis_mask.shape[0]
    per_row = [configs] * rows if isinstance(configs, SteeringConfig) else list(configs)
    if len(per_row) != rows:
        raise ValueError(f"got {len(per_row)} steering configs for a batch of {rows} rows")
    device = emphasis_mask.device
    inside = torch.tensor([[c.inside_bias if c else 0.0] for c in per_row], dtype=torch.float32, device=device)
    outside = torch.tensor([[c.outside_bias if c else 0.0] for c in per_row], dtype=torch.float32, device=device)
    emphasis = emphasis_mask.bool() & prompt_mask.bool()
    rest = prompt_mask.bool() & ~emphasis
    zero = torch.zeros((), dtype=torch.float32, device=device)
    bias = torch.where(emphasis, inside, torch.where(rest, outside, zero))
    return bias * emphasis.any(dim=-1, keepdim=True)


def head_weights(heads: HeadConfig | Sequence[HeadConfig | None], num_heads: int) -> dict[int, torch.Tensor]:
    """Which heads get the bias, per layer: {layer: [rows, heads] float}, 1.0 on steered heads.

    heads: one HeadConfig for every row (rows = 1, broadcast over the batch), or one per batch row
    (None: the row steers no head). Layers that no row steers are absent (they run the stock path).
    """
    per_row = [heads] if isinstance(heads, HeadConfig) else list(heads)
    weights: dict[int, torch.Tensor] = {}
    for row, row_heads in enumerate(per_row):
        for layer, steered in row_heads.layers if row_heads is not None else ():
            weights.setdefault(layer, torch.zeros(len(per_row), num_heads))[row, list(steered)] = 1.0
    return weights


def keys_bias(bias: torch.Tensor, key_start: int, num_keys: int) -> torch.Tensor:
    """Slice the token bias to the keys present in a layer.

    bias: [batch, tokens]. The layer's keys are absolute positions key_start .. key_start+num_keys-1
    (a sliding-window cache may hold only the last keys). Positions past the input (generated
    tokens) get 0: the paper steers prompt positions only.
    Returns [batch, num_keys].
    """
    present = bias[:, key_start : key_start + num_keys]
    missing = num_keys - present.shape[1]
    if missing > 0:
        present = torch.nn.functional.pad(present, (0, missing))
    return present


def layer_bias(key_bias: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Combine key bias [batch, keys] with head weights [batch or 1, heads] -> [batch, heads, 1, keys]."""
    return (weights[:, :, None, None] * key_bias[:, None, None, :]).to(dtype)
