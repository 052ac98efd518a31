"""Score one profiling item under many head choices, reusing everything steering cannot change.

Steering the heads of layer l changes nothing below l, and nothing at positions before the first
emphasised token (every key such a position sees is outside the span and gets the same bias, which
softmax cancels). So for each item the scorer runs once unsteered:
  1. the prefix (positions before the first emphasised token) -> its KV cache;
  2. the rest, on a copy of that cache, recording each decoder layer's output -> the baseline score.
A variant steering heads of layer l (one head configuration per batch row) then runs only the rest,
on copies of the prefix cache, with layers < l replaced by replays of their recorded outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from attnsteer.errors import UnsupportedModelError
from attnsteer.profiling.items import ProfileItem, item_scores
from attnsteer.steering.bias import token_bias
from attnsteer.steering.config import SteeringConfig
from attnsteer.steering.context import model_shape
from attnsteer.steering.install import installed
from attnsteer.steering.state import SteeringState, activate


@dataclass
class Baseline:
    """The unsteered run of one item.

    prefix_cache: KV cache of positions [0, item.first_emphasised) (None when that is empty).
    layer_outputs: what each decoder layer returned for the remaining positions ([1, rest, hidden]).
    score: the unsteered score.
    """

    prefix_cache: Any
    layer_outputs: list[Any]
    score: float


class HeadScorer:
    """Scores items with chosen heads steered; see the module docstring for what it reuses."""

    def __init__(self, model: PreTrainedModel, config: SteeringConfig | None = None) -> None:
        self.model = model
        self.config = config or SteeringConfig()
        self.num_layers, self.num_heads = model_shape(model)
        self.layers = decoder_layers(model)

    # ----- unsteered --------------------------------------------------------------------------
    @torch.inference_mode()
    def baseline(self, item: ProfileItem) -> Baseline:
        cache = self.prefix_cache(item)
        outputs: list[Any] = [None] * self.num_layers
        hooks = [layer.register_forward_hook(_recorder(outputs, index)) for index, layer in enumerate(self.layers)]
        try:
            logits = self._run_rest(item, _repeat(cache, 1), rows=1)
        finally:
            for hook in hooks:
                hook.remove()
        return Baseline(cache, outputs, float(item_scores(item, logits)[0]))

    @torch.inference_mode()
    def prefix_cache(self, item: ProfileItem) -> Any:
        """The KV cache of positions [0, item.first_emphasised), or None when there are none."""
        prefix = item.first_emphasised
        if prefix == 0:
            return None
        return self.model(input_ids=item.input_ids[None, :prefix], use_cache=True, logits_to_keep=1).past_key_values

    # ----- steered ----------------------------------------------------------------------------
    @torch.inference_mode()
    def score_layer(self, item: ProfileItem, baseline: Baseline, layer: int, head_rows: torch.Tensor) -> torch.Tensor:
        """Scores with heads of ONE layer steered, one head selection per row.

        head_rows: [rows, heads] float, 1.0 on the heads each row steers in `layer`.
        Returns [rows] float32 scores.
        """
        rows = head_rows.shape[0]
        state = self._state(item, {layer: head_rows})
        with installed(self.model), activate(state), replaying(self.layers, baseline.layer_outputs, layer):
            logits = self._run_rest(item, _repeat(baseline.prefix_cache, rows), rows)
        self._check_visited(state, [layer])
        return item_scores(item, logits)

    @torch.inference_mode()
    def score_heads(self, item: ProfileItem, baseline: Baseline, weights: dict[int, torch.Tensor]) -> torch.Tensor:
        """Scores with heads of several layers steered. weights: {layer: [rows, heads]}. Returns [rows]."""
        rows = next(iter(weights.values())).shape[0]
        lowest = min(weights)
        state = self._state(item, weights)
        with installed(self.model), activate(state), replaying(self.layers, baseline.layer_outputs, lowest):
            logits = self._run_rest(item, _repeat(baseline.prefix_cache, rows), rows)
        self._check_visited(state, list(weights))
        return item_scores(item, logits)

    def gradient(self, item: ProfileItem) -> tuple[torch.Tensor, float]:
        """d(score)/d(beta) at beta = 0, where beta[l, h] scales the PASTA bias of head h in layer l.

        One forward and one backward through the non-prefix positions. Returns ([layers, heads], the
        unsteered score, which is the score at beta = 0).
        """
        cache = self.prefix_cache(item)
        beta = torch.zeros(self.num_layers, self.num_heads, requires_grad=True)
        state = self._state(item, {layer: beta[layer][None] for layer in range(self.num_layers)})
        state.fast_prefill = False  # the full-mask path keeps zero-weight heads in the graph
        with torch.enable_grad(), installed(self.model), activate(state):
            logits = self._run_rest(item, cache, rows=1)
            score = item_scores(item, logits)[0]
            # autograd.grad, not backward(): no gradients for the model's weights are computed.
            (gradient,) = torch.autograd.grad(score, beta)
        return gradient, float(score.detach())

    # ----- helpers ----------------------------------------------------------------------------
    def _state(self, item: ProfileItem, weights: dict[int, torch.Tensor]) -> SteeringState:
        bias = token_bias(item.emphasis_mask[None], item.prompt_mask[None], self.config)
        return SteeringState(bias, weights)

    def _run_rest(self, item: ProfileItem, cache: Any, rows: int) -> torch.Tensor:
        """Logits [rows, item.num_scored_positions, vocab] of the positions after the prefix."""
        rest = item.input_ids[item.first_emphasised :][None].expand(rows, -1)
        output = self.model(input_ids=rest, cache=cache, use_cache=cache is not None,
                            logits_to_keep=item.num_scored_positions)
        return output.logits

    def _check_visited(self, state: SteeringState, layers: list[int]) -> None:
        missing = sorted(set(layers) - state.visited)
        if missing:
            raise UnsupportedModelError(f"layers {missing} were never steered while profiling")


def decoder_layers(model: PreTrainedModel) -> nn.ModuleList:
    """The model's list of decoder layers (the ModuleList with one entry per hidden layer)."""
    num_layers, _ = model_shape(model)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers:
            return module
    raise UnsupportedModelError(f"{type(model).__name__}: cannot find its list of {num_layers} decoder layers")


class ReplayLayer(nn.Module):
    """Stands in for a decoder layer: returns what that layer returned in the baseline run."""

    def __init__(self, original: nn.Module, output: Any) -> None:
        super().__init__()
        self.output = output
        for attribute in ("attention_type", "layer_idx"):
            if hasattr(original, attribute):
                setattr(self, attribute, getattr(original, attribute))

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        rows = hidden_states.shape[0]
        if isinstance(self.output, tuple):
            return (self.output[0].expand(rows, -1, -1), *self.output[1:])
        return self.output.expand(rows, -1, -1)


@contextmanager
def replaying(layers: nn.ModuleList, outputs: list[Any], below: int) -> Iterator[None]:
    """Replace layers [0, below) by replays of `outputs` inside the block."""
    originals = [layers[index] for index in range(below)]
    try:
        for index in range(below):
            layers[index] = ReplayLayer(originals[index], outputs[index])
        yield
    finally:
        for index, original in enumerate(originals):
            layers[index] = original


def _recorder(outputs: list[Any], index: int):
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        outputs[index] = output

    return hook


def _repeat(cache: Any, rows: int) -> Any:
    """A private copy of `cache` with each row repeated `rows` times (None stays None)."""
    if cache is None:
        return None
    copied = copy.deepcopy(cache)
    if rows > 1:
        copied.batch_repeat_interleave(rows)
    return copied
