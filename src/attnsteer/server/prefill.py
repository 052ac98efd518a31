"""Reading one row's prompt before it joins the running batch: the pluggable prefill of continuous batching.

A prefill function has the signature `prefill(model, row_steering, input_ids [1, T], emphasis [1, T]) -> Prefill`:
`attnsteer.context.prefix_cache.prefill` (the one prefill; the server binds its `PrefixCache` with
functools.partial, so a request reuses the longest cached steered prefix). `cache_layers` checks what a row
brings to the running batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import PreTrainedModel

from attnsteer.context.prefix_cache import Prefill
from attnsteer.steering.config import RowSteering

PrefillFunction = Callable[[PreTrainedModel, RowSteering | None, torch.Tensor, torch.Tensor], Prefill]


def cache_layers(cache: Any, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A prefill cache's (keys, values) per layer, each [1, kv_heads, length, head_dim].

    Raises ValueError when a layer holds fewer positions (a sliding-window layer that dropped keys): rows
    merged into a running batch need every position of every layer.
    """
    layers = []
    for index, (keys, values, *_) in enumerate(cache):
        if keys is None or keys.dim() != 4 or keys.shape[0] != 1 or keys.shape[2] != length:
            shape = None if keys is None else tuple(keys.shape)
            raise ValueError(f"the prefill cache's layer {index} holds keys {shape}, not [1, kv_heads, {length}, "
                             "head_dim]: continuous batching needs full layers (DynamicCache() without a config)")
        layers.append((keys, values))
    return layers
