"""The steered attention functions, registered with transformers' `AttentionInterface`.

A layer gets a static bias (PASTA / InstABoost rows: `state.bias_for`) and/or Spotlight's dynamic one
(`state.spotlight_for`, `spotlight.py`).

Two implementations are registered, each with its matching mask function:
- `attnsteer_sdpa`: torch's scaled_dot_product_attention, the bias passed as a float mask;
- `attnsteer_eager`: the model's own eager attention (needed for logit soft-capping, Gemma 2),
  the bias added to its float mask, so it lands after the soft-cap.
Layers with no steered head, and every call made while nothing is steered, run the stock path.
While an `AttentionReadout` is active (`state.activate_readout`), both run the model's eager attention
(so the probabilities exist) and hand each layer's probabilities to the readout: reading attention
never switches the model-wide implementation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from attnsteer.errors import UnsupportedModelError
from attnsteer.steering.split_heads import split_heads_attention
from attnsteer.steering.spotlight import spotlight_eager, spotlight_sdpa
from attnsteer.steering.state import active_readout, active_state

STEERED_SDPA = "attnsteer_sdpa"
STEERED_EAGER = "attnsteer_eager"


def steered_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """sdpa with the PASTA bias. query: [batch, heads, queries, dim]; key/value: [batch, kv_heads, keys, dim].

    Prefill (several queries) takes the split-heads fast path (`split_heads.py`); a decode step (one
    query) passes the bias [batch, heads, 1, keys] as the mask, which costs O(heads * keys).
    """
    if active_readout() is not None:
        mask = float_mask(attention_mask, query.shape[2], key.shape[2], query.dtype, query.device)
        return steered_eager_forward(module, query, key, value, mask, **kwargs)
    state = active_state()
    bias = state.bias_for(module.layer_idx, query, key.shape[2]) if state is not None else None
    spotlight = state.spotlight_for(module.layer_idx, query, key.shape[2]) if state is not None else None
    if bias is None and spotlight is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if kwargs.get("position_bias") is not None:
        raise UnsupportedModelError(f"{type(module).__name__} already uses a position bias; use the eager path")
    if spotlight is not None:
        return spotlight_sdpa(module, query, key, value, attention_mask, bias, spotlight, **kwargs)
    if query.shape[2] > 1 and state.fast_prefill:
        steered = state.steered_heads(module.layer_idx, query.device)
        return split_heads_attention(module, query, key, value, attention_mask, bias, steered, **kwargs)
    return sdpa_attention_forward(module, query, key, value, attention_mask, position_bias=bias, **kwargs)


def steered_eager_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's eager attention with the bias folded into its float mask [batch, heads, queries, keys];
    the probabilities go to the active readout, if any."""
    eager = model_eager_attention(module)
    state = active_state()
    bias = state.bias_for(module.layer_idx, query, key.shape[2]) if state is not None else None
    spotlight = state.spotlight_for(module.layer_idx, query, key.shape[2]) if state is not None else None
    if bias is not None:
        attention_mask = _add_bias_to_float_mask(attention_mask, bias, query.shape[2])
    if spotlight is not None:
        mask = float_mask(attention_mask, query.shape[2], key.shape[2], query.dtype, query.device)
        attention_mask = spotlight_eager(eager, module, query, key, value, mask[..., : key.shape[2]], spotlight,
                                         **kwargs)
    output, probabilities = eager(module, query, key, value, attention_mask, **kwargs)
    readout = active_readout()
    if readout is not None and readout.record is not None and probabilities is not None:
        readout.record(module.layer_idx, probabilities.detach())
    return output, probabilities


def _add_bias_to_float_mask(mask: torch.Tensor | None, bias: torch.Tensor, num_queries: int) -> torch.Tensor:
    """mask: [batch, 1, queries, keys] (0 / dtype-min) or None (plain causal); bias: [batch, heads, 1, keys]."""
    if mask is None:
        mask = causal_float_mask(num_queries, bias.shape[-1], bias.dtype, bias.device)
    mask = mask[..., : bias.shape[-1]]
    return torch.where(mask > torch.finfo(mask.dtype).min, mask + bias, mask)


def causal_float_mask(num_queries: int, num_keys: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[1, 1, queries, keys]: 0 where the query (the last `num_queries` positions) may see the key, else dtype-min."""
    query_pos = torch.arange(num_keys - num_queries, num_keys, device=device)[:, None]
    allowed = torch.arange(num_keys, device=device)[None, :] <= query_pos
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


def float_mask(
    mask: torch.Tensor | None, num_queries: int, num_keys: int, dtype: torch.dtype, device: torch.device,
) -> torch.Tensor:
    """An sdpa mask as the additive float mask eager attention takes.

    mask: None (sdpa runs plain causal), [batch, 1, queries, keys] bool (True = may attend) or float.
    """
    if mask is None:
        return causal_float_mask(num_queries, num_keys, dtype, device)
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask


def model_eager_attention(module: torch.nn.Module) -> Callable[..., tuple[torch.Tensor, torch.Tensor | None]]:
    """The `eager_attention_forward` defined next to the module's class (each model has its own)."""
    source = inspect.getmodule(type(module))
    eager = getattr(source, "eager_attention_forward", None)
    if eager is None:
        raise UnsupportedModelError(
            f"{type(module).__name__} defines no eager_attention_forward; use the sdpa path for this model"
        )
    return eager


def _recording_mask(inner: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a mask function so the active steering state learns where this forward's queries end."""

    def mask_function(*, q_length: int, q_offset: int = 0, **kwargs: Any) -> Any:
        state = active_state()
        if state is not None:
            state.note_query(int(q_offset), q_length)
        return inner(q_length=q_length, q_offset=q_offset, **kwargs)

    mask_function.__name__ = f"attnsteer_{inner.__name__}"
    return mask_function


def register_steered_attention() -> None:
    """Register both steered implementations (idempotent; safe to call at every install)."""
    AttentionInterface.register(STEERED_SDPA, steered_sdpa_forward)
    AttentionInterface.register(STEERED_EAGER, steered_eager_forward)
    AttentionMaskInterface.register(STEERED_SDPA, _recording_mask(sdpa_mask))
    AttentionMaskInterface.register(STEERED_EAGER, _recording_mask(eager_mask))
