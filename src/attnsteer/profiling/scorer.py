"""Score batches of profiling items under many head choices, reusing what steering cannot change.

Steering the heads of layer l changes nothing below l, and nothing at positions before the first
emphasised token (every key such a position sees is outside the span and gets the same bias, which
softmax cancels). So each batch of items (`batching.ItemBatch`) runs once unsteered:
  1. the prefixes (positions before each item's first emphasised token) -> their KV cache;
  2. the rests, on a copy of that cache, recording each decoder layer's output -> baseline scores.
A variant steering heads of layer l (one head selection per batch row) then runs only the rests,
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
from attnsteer.model_info import model_shape
from attnsteer.profiling.batching import ItemBatch
from attnsteer.steering.activation import steered
from attnsteer.steering.bias import token_bias
from attnsteer.steering.config import SteeringConfig
from attnsteer.steering.state import SteeringState


@dataclass
class Baseline:
    """The unsteered run of one batch.

    prefix_cache: KV cache of the prefix columns (None when the batch has no prefix).
    layer_outputs: what each decoder layer returned for the rest columns ([B, R, hidden]).
    scores: [B] the unsteered scores.
    """

    prefix_cache: Any
    layer_outputs: list[Any]
    scores: torch.Tensor


class HeadScorer:
    """Scores item batches with chosen heads steered; see the module docstring for what it reuses."""

    def __init__(self, model: PreTrainedModel, config: SteeringConfig | None = None) -> None:
        self.model = model
        self.config = config or SteeringConfig()
        self.num_layers, self.num_heads = model_shape(model)
        self.layers = decoder_layers(model)
        # Items are padded when batched; a sliding window must cover a whole padded row to stay exact.
        self.window = getattr(model.config.get_text_config(), "sliding_window", None)

    # ----- unsteered --------------------------------------------------------------------------
    @torch.inference_mode()
    def prefix_cache(self, batch: ItemBatch) -> Any:
        """The KV cache of the prefix columns, or None when the batch has none."""
        if not batch.has_prefix:
            return None
        output = self.model(input_ids=batch.prefix_ids, attention_mask=batch.prefix_mask.long(),
                            position_ids=batch.prefix_positions, use_cache=True, logits_to_keep=1)
        return output.cache

    @torch.inference_mode()
    def baseline(self, batch: ItemBatch) -> Baseline:
        cache = self.prefix_cache(batch)
        outputs: list[Any] = [None] * self.num_layers
        hooks = [layer.register_forward_hook(_recorder(outputs, index)) for index, layer in enumerate(self.layers)]
        try:
            logits = self._run_rest(batch, _repeat(cache, 1), variants=1)
        finally:
            for hook in hooks:
                hook.remove()
        return Baseline(cache, outputs, batch.scores(logits, 1)[:, 0])

    # ----- steered ----------------------------------------------------------------------------
    @torch.inference_mode()
    def score_layer(self, batch: ItemBatch, baseline: Baseline, layer: int, head_rows: torch.Tensor) -> torch.Tensor:
        """Scores with heads of ONE layer steered, one head selection per variant.

        head_rows: [variants, heads] float, 1.0 on the heads each variant steers in `layer`.
        Returns [B, variants] float32 scores.
        """
        return self.score_heads(batch, baseline, {layer: head_rows})

    @torch.inference_mode()
    def score_heads(self, batch: ItemBatch, baseline: Baseline, weights: dict[int, torch.Tensor]) -> torch.Tensor:
        """Scores with heads of any layers steered. weights: {layer: [variants, heads]}. Returns [B, variants]."""
        variants = next(iter(weights.values())).shape[0]
        lowest = min(weights)
        state = self._state(batch, {layer: rows.repeat(batch.size, 1) for layer, rows in weights.items()}, variants)
        replays = [_repeat_rows(output, variants) for output in baseline.layer_outputs[:lowest]]
        with steered(self.model, state), replaying(self.layers, replays):
            logits = self._run_rest(batch, _repeat(baseline.prefix_cache, variants), variants)
        return batch.scores(logits, variants)

    def gradient(self, batch: ItemBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """d(score)/d(beta) at beta = 0, summed over the batch's items, where beta[l, h] scales the
        PASTA bias of head h in layer l. One forward and one backward through the rest columns.

        Returns ([layers, heads] summed gradient, [B] unsteered scores = the scores at beta = 0).
        """
        cache = self.prefix_cache(batch)
        beta = torch.zeros(self.num_layers, self.num_heads, requires_grad=True)
        state = self._state(batch, {layer: beta[layer][None] for layer in range(self.num_layers)}, 1)
        state.fast_prefill = False  # the full-mask path keeps zero-weight heads in the graph
        with torch.enable_grad(), steered(self.model, state):
            scores = batch.scores(self._run_rest(batch, cache, variants=1), 1)[:, 0]
            # autograd.grad, not backward(): no gradients for the model's weights are computed.
            (gradient,) = torch.autograd.grad(scores.sum(), beta)
        return gradient, scores.detach()

    # ----- helpers ----------------------------------------------------------------------------
    def _state(self, batch: ItemBatch, weights: dict[int, torch.Tensor], variants: int) -> SteeringState:
        """A state whose head weights are given per row ([B * variants, heads] per layer; or a [1, heads]
        tensor that requires grad, for `gradient`), so one forward scores many head choices."""
        bias = token_bias(batch.emphasis_mask, batch.prompt_mask, self.config).repeat_interleave(variants, dim=0)
        return SteeringState(bias, weights)

    def _run_rest(self, batch: ItemBatch, cache: Any, variants: int) -> torch.Tensor:
        """Logits [B * variants, batch.scored_positions, vocab] of the rest columns (rows item-major)."""
        def rows(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.repeat_interleave(variants, dim=0)

        output = self.model(input_ids=rows(batch.rest_ids), attention_mask=rows(batch.attention_mask),
                            position_ids=rows(batch.rest_positions), cache=cache, use_cache=cache is not None,
                            logits_to_keep=batch.scored_positions)
        return output.logits


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
        return self.output


@contextmanager
def replaying(layers: nn.ModuleList, outputs: list[Any]) -> Iterator[None]:
    """Replace the first len(outputs) layers by replays of `outputs` inside the block."""
    originals = [layers[index] for index in range(len(outputs))]
    try:
        for index, output in enumerate(outputs):
            layers[index] = ReplayLayer(originals[index], output)
        yield
    finally:
        for index, original in enumerate(originals):
            layers[index] = original


def _recorder(outputs: list[Any], index: int):
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        outputs[index] = output

    return hook


def _repeat_rows(output: Any, variants: int) -> Any:
    """A recorded layer output (tensor [B, R, hidden] or a tuple starting with one), rows repeated."""
    if isinstance(output, tuple):
        return (output[0].repeat_interleave(variants, dim=0), *output[1:])
    return output.repeat_interleave(variants, dim=0)


def _repeat(cache: Any, rows: int) -> Any:
    """A private copy of `cache` with each row repeated `rows` times (None stays None)."""
    if cache is None:
        return None
    copied = copy.deepcopy(cache)
    if rows > 1:
        copied.batch_repeat_interleave(rows)
    return copied
