"""An emulation of the original PASTA implementation (pastalib), written from its description:
eager attention, and on each steered layer a forward pre-hook that clones the layer's attention
mask, expands it to [batch, heads, queries, keys], and adds log(alpha) on the steered heads'
columns of non-emphasised prompt tokens. Used only as a baseline by `overhead.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from attnsteer.heads import HeadConfig
from attnsteer.steering.installation import attention_layers


@contextmanager
def original_pasta(model, heads: HeadConfig, emphasis_mask: torch.Tensor, prompt_mask: torch.Tensor,
                   alpha: float = 0.01) -> Iterator[None]:
    """emphasis_mask, prompt_mask: [batch, tokens] bool over the prompt. The model must run eager."""
    outside = prompt_mask & ~emphasis_mask  # [batch, prompt tokens]
    layers = attention_layers(model)
    handles = []
    for layer, steered in heads.layers:
        hook = _make_hook(list(steered), outside, math.log(alpha))
        handles.append(layers[layer].register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _make_hook(steered: list[int], outside: torch.Tensor, log_alpha: float):
    def hook(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None:
            return None
        batch, _, queries, keys = mask.shape
        expanded = mask.expand(batch, module.config.num_attention_heads, queries, keys).clone()
        prompt_keys = min(keys, outside.shape[1])
        penalty = outside[:, None, None, :prompt_keys].to(expanded.dtype) * log_alpha
        expanded[:, steered, :, :prompt_keys] += penalty
        kwargs["attention_mask"] = expanded
        return args, kwargs

    return hook
