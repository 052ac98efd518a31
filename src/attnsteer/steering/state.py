"""Per-call attention state, carried in contextvars so threads and requests never share it.

- `SteeringState`: the bias the steered attention adds, while a steering block is active;
- `AttentionReadout`: a request to compute (and optionally record) attention probabilities, while a
  reading block is active (LLMSteer's readings, the server's attention view). Reading needs no
  model-wide switch of the attention implementation: the installed steered attention checks it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from attnsteer.errors import UnsupportedModelError
from attnsteer.steering.bias import keys_bias, layer_bias

_ACTIVE: contextvars.ContextVar[SteeringState | None] = contextvars.ContextVar("attnsteer_state", default=None)
_READOUT: contextvars.ContextVar[AttentionReadout | None] = contextvars.ContextVar("attnsteer_readout", default=None)


@dataclass
class SteeringState:
    """What the steered attention needs during the forward passes of one call.

    token_bias: [batch, tokens] float, the per-position score bias (see `bias.token_bias`), indexed
        by absolute position in the input the call started with.
    weights: {layer: [batch or 1, heads] float}, how much of the bias each head gets (1.0 = PASTA).
    spotlight: the rows steered to a target share of attention (Spotlight), on every layer; None: none.
    query_end: absolute position just past the current forward's last query; set by the mask
        function each forward (so keys map to absolute positions, also for sliding-window caches).
    visited: layers whose steered attention ran (to check that nothing was silently unsteered).
    fast_prefill: prefill steered layers through the split-heads path (no [B, H, T, S] mask); False
        builds the full bias mask instead (kept to measure against, `benchmarks/overhead.py`).
    """

    token_bias: torch.Tensor
    weights: dict[int, torch.Tensor]
    spotlight: SpotlightRows | None = None
    query_end: int | None = None
    query_length: int | None = None
    visited: set[int] = field(default_factory=set)
    fast_prefill: bool = True
    _key_cache: dict[tuple[int, int, torch.device], torch.Tensor] = field(default_factory=dict, repr=False)

    def note_query(self, q_offset: int, q_length: int) -> None:
        """Called by the mask function at the start of every forward."""
        self.query_end = int(q_offset) + int(q_length)
        self.query_length = int(q_length)
        self._key_cache.clear()

    def bias_for(self, layer: int, query: torch.Tensor, num_keys: int) -> torch.Tensor | None:
        """The bias [batch, heads, 1, keys] for `layer`, or None if the layer steers no head.

        query: [batch, heads, queries, head_dim], used for shapes, device and dtype: the bias is built on the
        layer's own device (a model split over devices, `load_model(device_map=...)`).
        """
        weights = self.weights.get(layer)
        if weights is None:
            return None
        self.visited.add(layer)
        key_start = self._key_start(query.shape[2], num_keys)
        where = (key_start, num_keys, query.device)  # layers of a split model sit on different devices
        cached = self._key_cache.get(where)
        if cached is None:
            cached = keys_bias(self.token_bias, key_start, num_keys).to(query.device)
            self._key_cache[where] = cached
        _check_shapes(layer, weights, cached, query)
        return layer_bias(cached, weights.to(query.device), query.dtype)

    def spotlight_for(self, layer: int, query: torch.Tensor, num_keys: int) -> SpotlightLayer | None:
        """Spotlight's rows as seen by `layer`'s keys and queries, or None when no row is spotlighted.

        query: [batch, heads, queries, head_dim], used for shapes and device.
        """
        if self.spotlight is None:
            return None
        self.visited.add(layer)
        key_start = self._key_start(query.shape[2], num_keys)
        assert self.query_end is not None  # set by _key_start's check
        return self.spotlight.at(key_start, num_keys, self.query_end - query.shape[2], query.shape[2],
                                 query.device)

    def steered_heads(self, layer: int, device: torch.device) -> torch.Tensor:
        """[n] long: the heads of `layer` that any batch row steers."""
        return self.weights[layer].abs().sum(dim=0).nonzero().flatten().to(device)

    def check_visited(self) -> None:
        """Raise UnsupportedModelError if a layer this state steers never ran the steered attention."""
        expected = set(self.weights) | (set(self.spotlight.layers) if self.spotlight is not None else set())
        missing = sorted(expected - self.visited)
        if missing:
            raise UnsupportedModelError(
                f"layers {missing} were never steered: their attention does not dispatch through "
                "transformers' AttentionInterface (or the model was not called inside the steering block)"
            )

    def _key_start(self, num_queries: int, num_keys: int) -> int:
        if self.query_end is None or self.query_length != num_queries:
            raise RuntimeError(
                "attnsteer could not locate the keys: the causal mask was not built by transformers for this "
                "forward (pass a 2D attention_mask or none, not a prepared 4D mask)"
            )
        # Keys are the last `num_keys` positions ending at the current query (full layers hold all
        # of them, sliding-window layers a suffix); a static cache holds a buffer from position 0.
        return max(self.query_end - num_keys, 0)


@dataclass(frozen=True)
class SpotlightLayer:
    """Spotlight's rows at one layer's forward.

    span: [batch, keys] float32, 1.0 on emphasised keys. target: [batch] float32 (0: row not spotlighted).
    per_head: [batch] bool, granularity "head". valid_queries: [batch, queries] bool, not padding.
    """

    span: torch.Tensor
    target: torch.Tensor
    per_head: torch.Tensor
    valid_queries: torch.Tensor


@dataclass(frozen=True)
class SpotlightRows:
    """Spotlight's rows of a batch (see `SpotlightTarget`).

    target: [batch] float32, the share each row steers to (0: the row is not spotlighted).
    per_head: [batch] bool, True for granularity "head" (else "layer").
    span: [batch, tokens] bool, the emphasised prompt tokens (absolute positions of the input).
    valid: [batch, tokens] bool, the real (non-padding) input positions; positions after the input
        (generated tokens) are real and never emphasised.
    layers: the layers steered (every layer of the model).
    """

    target: torch.Tensor
    per_head: torch.Tensor
    span: torch.Tensor
    valid: torch.Tensor
    layers: tuple[int, ...]

    def at(self, key_start: int, num_keys: int, query_start: int, num_queries: int,
           device: torch.device) -> SpotlightLayer:
        """The rows sliced to keys key_start .. +num_keys and queries query_start .. +num_queries."""
        span = keys_bias(self.span.float(), key_start, num_keys)
        valid = keys_bias(self.valid.float(), query_start, num_queries)
        past_input = torch.arange(query_start, query_start + num_queries) >= self.valid.shape[1]
        valid_queries = (valid > 0) | past_input[None, :].to(valid.device)
        return SpotlightLayer(span.to(device), self.target.to(device), self.per_head.to(device),
                              valid_queries.to(device))


def _check_shapes(layer: int, weights: torch.Tensor, key_bias: torch.Tensor, query: torch.Tensor) -> None:
    batch, heads = query.shape[0], query.shape[1]
    if weights.shape[-1] != heads:
        raise ValueError(f"layer {layer} has {heads} heads but the head weights have {weights.shape[-1]}")
    for name, rows in (("emphasis", key_bias.shape[0]), ("head weights", weights.shape[0])):
        if rows not in (1, batch):
            raise ValueError(f"the {name} has {rows} rows but the model input has batch size {batch}")


def active_state() -> SteeringState | None:
    """The steering state of the current thread/task, or None when nothing is being steered."""
    return _ACTIVE.get()


def activate(state: SteeringState) -> contextlib.AbstractContextManager[SteeringState]:
    """Make `state` the active steering state for model calls inside the block (this thread/task only)."""
    return _set_within(_ACTIVE, state)


@dataclass(frozen=True)
class AttentionReadout:
    """Compute attention probabilities in this call; `record(layer, probabilities)` receives each layer's
    [batch, heads, queries, keys] probabilities (None: only return them, for `output_attentions=True`)."""

    record: Callable[[int, torch.Tensor], None] | None = None


def active_readout() -> AttentionReadout | None:
    """The attention readout of the current thread/task, or None."""
    return _READOUT.get()


def activate_readout(readout: AttentionReadout) -> contextlib.AbstractContextManager[AttentionReadout]:
    """Make `readout` active for model calls inside the block (this thread/task only)."""
    return _set_within(_READOUT, readout)


@contextlib.contextmanager
def _set_within(variable: contextvars.ContextVar[Any], value: Any) -> Iterator[Any]:
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)
