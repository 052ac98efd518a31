"""The one way to steer (or read) a model's attention for a block of calls.

1. `prepare_state(model, steering, emphasis_mask, prompt_mask)`: check the heads against the model and
   build the `SteeringState` (the per-token bias and the per-head weights) for a batch;
2. `with steered(model, state):` install the steered attention if needed, make the state active for
   this thread/task, and on leaving check that every steered layer really ran steered.
`reading_attention(model, record)` is the same kind of block for reading attention probabilities.
`Steerer`, `SteeredContext`, the server's batch decoder and the head profiler all go through these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from attnsteer.model_info import model_shape
from attnsteer.steering.bias import head_weights, token_bias
from attnsteer.steering.config import RowSteering
from attnsteer.steering.installation import installed
from attnsteer.steering.state import AttentionReadout, SteeringState, activate, activate_readout


def prepare_state(
    model: Any,
    steering: RowSteering | Sequence[RowSteering | None],
    emphasis_mask: torch.Tensor,
    prompt_mask: torch.Tensor,
    fast_prefill: bool = True,
) -> SteeringState:
    """The steering of a batch as one `SteeringState`.

    steering: one `RowSteering` for every row, or one per batch row (None: that row runs plain, so
        plain and steered rows share a batch).
    emphasis_mask: [batch, tokens] bool, True on emphasised input tokens.
    prompt_mask: [batch, tokens] bool, the tokens steering may down-weight; usually the attention
        mask. Tokens generated later are never down-weighted.
    fast_prefill: prefill through the split-heads path (True) or the full [B, H, T, S] bias mask.
    """
    if emphasis_mask.dim() != 2 or emphasis_mask.shape != prompt_mask.shape:
        raise ValueError(
            f"emphasis_mask {tuple(emphasis_mask.shape)} and the attention/prompt mask "
            f"{tuple(prompt_mask.shape)} must both be [batch, tokens]"
        )
    rows = [steering] if isinstance(steering, RowSteering) else list(steering)
    if not isinstance(steering, RowSteering) and len(rows) != emphasis_mask.shape[0]:
        raise ValueError(f"got {len(rows)} row steerings for a batch of {emphasis_mask.shape[0]} rows")
    num_layers, num_heads = model_shape(model)
    for row in rows:
        if row is not None:
            row.heads.validate(num_layers, num_heads)
    if isinstance(steering, RowSteering):  # one setting for all rows: head weights broadcast over them
        configs, heads = steering.config, steering.heads
    else:
        configs = [row.config if row else None for row in rows]
        heads = [row.heads if row else None for row in rows]
    bias = token_bias(emphasis_mask, prompt_mask.bool(), configs)
    return SteeringState(bias, head_weights(heads, num_heads), fast_prefill=fast_prefill)


@contextmanager
def steered(model: Any, state: SteeringState | None) -> Iterator[SteeringState | None]:
    """Steer every call of `model` inside the block with `state` (this thread/task only; None: plain).

    On a normal exit, raises UnsupportedModelError if a layer the state steers never ran steered
    (its attention does not dispatch through transformers' AttentionInterface): never a silent no-op.
    """
    if state is None:
        yield None
        return
    with installed(model), activate(state):
        yield state
    state.check_visited()


@contextmanager
def reading_attention(model: Any, record: Callable[[int, torch.Tensor], None] | None = None) -> Iterator[None]:
    """Compute attention probabilities in every call of `model` inside the block (this thread/task only).

    The installed steered attention runs the model's eager attention (steering, if a state is active,
    still applies) and passes each layer's probabilities [batch, heads, queries, keys] to
    `record(layer, probabilities)`; with `output_attentions=True` the model also returns them.
    Nothing model-wide is switched, so a steering block in another thread is not affected.
    """
    with installed(model), activate_readout(AttentionReadout(record)):
        yield
