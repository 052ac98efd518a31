"""`steering(...)`: the low-level context manager; any model call inside the block is steered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import PreTrainedModel

from attnsteer.heads.head_config import HeadConfig
from attnsteer.steering.bias import head_weights, token_bias
from attnsteer.steering.config import SteeringConfig
from attnsteer.steering.install import installed
from attnsteer.steering.state import SteeringState, activate


def model_shape(model: PreTrainedModel) -> tuple[int, int]:
    """(number of layers, query heads per layer) from the model's text config."""
    config = model.config.get_text_config()
    return config.num_hidden_layers, config.num_attention_heads


def build_state(
    model: PreTrainedModel,
    heads: HeadConfig,
    emphasis_mask: torch.Tensor,
    prompt_mask: torch.Tensor,
    config: SteeringConfig,
) -> SteeringState:
    """Validate the heads against the model and turn the masks into a `SteeringState`.

    emphasis_mask, prompt_mask: [batch, tokens] bool (see `bias.token_bias`).
    """
    num_layers, num_heads = model_shape(model)
    heads.validate(num_layers, num_heads)
    if emphasis_mask.shape != prompt_mask.shape or emphasis_mask.dim() != 2:
        raise ValueError(
            f"emphasis_mask {tuple(emphasis_mask.shape)} and the attention/prompt mask "
            f"{tuple(prompt_mask.shape)} must both be [batch, tokens]"
        )
    return SteeringState(token_bias(emphasis_mask, prompt_mask, config), head_weights(heads, num_heads))


@contextmanager
def steering(
    model: PreTrainedModel,
    heads: HeadConfig,
    emphasis_mask: torch.Tensor,
    prompt_mask: torch.Tensor,
    config: SteeringConfig | None = None,
    fast_prefill: bool = True,
) -> Iterator[SteeringState]:
    """Steer every call of `model` inside the block (this thread / task only).

    emphasis_mask: [batch, tokens] bool, True on emphasised input tokens.
    prompt_mask: [batch, tokens] bool, the tokens steering may down-weight; usually the
        attention mask. Tokens generated later are never down-weighted.
    fast_prefill: see `SteeringState` (True: the split-heads path; False: the full bias mask).
    """
    state = build_state(model, heads, emphasis_mask, prompt_mask, config or SteeringConfig())
    state.fast_prefill = fast_prefill
    with installed(model), activate(state):
        yield state
