"""An explicit PASTA reference, independent of the bias path: take the model's own eager attention
probabilities, multiply non-emphasised prompt columns by alpha on the steered heads, renormalise.

Valid for full forwards without a cache (key index = absolute position).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import repeat_kv
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from attnsteer.heads import HeadConfig
from attnsteer.steering.attention import model_eager_attention

REFERENCE = "pasta_reference"
_SPEC: contextvars.ContextVar[ReferenceSpec | None] = contextvars.ContextVar("reference_spec", default=None)


@dataclass
class ReferenceSpec:
    heads: HeadConfig
    multiplier: torch.Tensor  # [batch, tokens]: alpha on non-emphasised prompt tokens, 1 elsewhere


def reference_attention(module, query, key, value, attention_mask, **kwargs):
    _, probs = model_eager_attention(module)(module, query, key, value, attention_mask, **kwargs)
    spec = _SPEC.get()
    steered = spec.heads.heads_in(module.layer_idx) if spec is not None else ()
    if steered:
        factor = torch.ones(probs.shape[0], probs.shape[1], 1, probs.shape[-1], dtype=probs.dtype, device=probs.device)
        factor[:, list(steered), 0, :] = spec.multiplier[:, None, : probs.shape[-1]].to(probs)
        probs = probs * factor
        probs = probs / probs.sum(dim=-1, keepdim=True)
    values = repeat_kv(value, query.shape[1] // value.shape[1])
    return torch.matmul(probs, values).transpose(1, 2).contiguous(), probs


AttentionInterface.register(REFERENCE, reference_attention)
AttentionMaskInterface.register(REFERENCE, eager_mask)


def multiplier(emphasis_mask: torch.Tensor, prompt_mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """[batch, tokens]: alpha on prompt tokens outside the emphasis, 1 elsewhere (rows with no emphasis: 1)."""
    outside = prompt_mask.bool() & ~emphasis_mask.bool() & emphasis_mask.any(dim=-1, keepdim=True)
    return torch.where(outside, torch.tensor(alpha), torch.tensor(1.0))


@contextmanager
def reference_implementation(model: PreTrainedModel, name: str, variable: contextvars.ContextVar, spec: object,
                             ) -> Iterator[None]:
    """Run `model` on the registered attention `name` with `spec` in `variable` inside the block, then restore."""
    original = model.config._attn_implementation
    model.set_attn_implementation(name)
    token = variable.set(spec)
    try:
        yield
    finally:
        variable.reset(token)
        model.set_attn_implementation(original)


def reference_steering(model: PreTrainedModel, spec: ReferenceSpec) -> contextlib.AbstractContextManager[None]:
    return reference_implementation(model, REFERENCE, _SPEC, spec)
