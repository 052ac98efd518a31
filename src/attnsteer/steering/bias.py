"""PASTA as an additive attention bias (DESIGN.md section 2).

Multiplying a head's attention on non-emphasised keys by alpha and renormalising equals adding
log(alpha) to those keys' pre-softmax scores. The bias depends only on (batch row, head, key), so
it is built as `[batch, heads, 1, keys]` and broadcasts over queries.
"""

from __future__ import annotations

import torch

from attnsteer.heads.head_config import HeadConfig
from attnsteer.steering.config import SteeringConfig


def token_bias(emphasis_mask: torch.Tensor, prompt_mask: torch.Tensor, config: SteeringConfig) -> torch.Tensor:
    """Per-token score bias over the input positions.

    emphasis_mask: [batch, tokens] bool, True on emphasised tokens.
    prompt_mask: [batch, tokens] bool, True on prompt tokens that steering may down-weight
        (not padding, not a continuation being scored).
    Returns [batch, tokens] float32: `config.outside_bias` on prompt tokens outside the emphasis,
    `config.inside_bias` on emphasised tokens, 0 elsewhere. A row with nothing emphasised gets 0
    everywhere (that row runs unsteered).
    """
    emphasis = emphasis_mask.bool() & prompt_mask.bool()
    outside = prompt_mask.bool() & ~emphasis
    bias = torch.zeros(emphasis.shape, dtype=torch.float32, device=emphasis.device)
    bias = bias.masked_fill(outside, config.outside_bias).masked_fill(emphasis, config.inside_bias)
    row_has_emphasis = emphasis.any(dim=-1, keepdim=True)
    return bias * row_has_emphasis


def head_weights(heads: HeadConfig, num_heads: int) -> dict[int, torch.Tensor]:
    """Per-layer head selection: {layer: [1, heads] float}, 1.0 on steered heads, 0.0 elsewhere."""
    weights = {}
    for layer, steered in heads.layers:
        row = torch.zeros(1, num_heads)
        row[0, list(steered)] = 1.0
        weights[layer] = row
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
