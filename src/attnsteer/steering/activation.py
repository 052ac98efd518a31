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
from attnsteer.steering.state import AttentionReadout, SpotlightRows, SteeringState, activate, activate_readout


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
    spotlight = spotlight_rows(rows, emphasis_mask.shape[0], emphasis_mask, prompt_mask, num_layers)
    return SteeringState(bias, head_weights(heads, num_heads), spotlight, fast_prefill=fast_prefill)


def spotlight_rows(rows: Sequence[RowSteering | None], batch: int, emphasis_mask: torch.Tensor,
                   prompt_mask: torch.Tensor, num_layers: int) -> SpotlightRows | None:
    """The Spotlight part of a batch's steering (None when no row has one).

    rows: one RowSteering for the whole batch (a single entry) or one per row.
    """
    targets = [row.spotlight if row is not None else None for row in rows]
    if all(target is None for target in targets):
        return None
    if len(targets) == 1:
        targets = targets * batch
    span = emphasis_mask.bool() & prompt_mask.bool()
    target = torch.tensor([t.target if t is not None else 0.0 for t in targets], dtype=torch.float32)
    target = target * span.any(dim=-1).float().cpu()  # a row with nothing emphasised runs unsteered
    per_head = torch.tensor([t is not None and t.granularity == "head" for t in targets])
    real = prompt_mask.bool().cumsum(dim=-1) > 0  # all but left padding (a scored continuation is real)
    return SpotlightRows(target, per_head, span, real, tuple(range(num_layers)))


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
