"""The playground's attention view: how much attention the steered heads put on the emphasis.

One forward of the prompt without steering and one with it, inside `steering.reading_attention`
(the installed steered attention computes the probabilities; nothing model-wide is switched). For
each steered head, the share is the attention mass on emphasised keys, averaged over the queries
after the emphasised span (the positions that read it; the last token when the span ends the prompt).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.heads.head_config import HeadConfig
from attnsteer.model_info import model_shape
from attnsteer.server.prompts import PreparedPrompt
from attnsteer.steering.activation import prepare_state, reading_attention, steered
from attnsteer.steering.config import RowSteering


def attention_probabilities(model: PreTrainedModel, prompt: PreparedPrompt, steer: bool) -> tuple[torch.Tensor, ...]:
    """Per layer: [heads, queries, keys] attention probabilities of the prompt (float32)."""
    input_ids = torch.tensor([prompt.input_ids], device=model.device)
    attention_mask = torch.ones_like(input_ids)
    state = None
    if steer:
        emphasis = torch.tensor([prompt.emphasis], device=model.device)
        state = prepare_state(model, prompt.steering, emphasis, attention_mask.bool())
    with torch.inference_mode(), reading_attention(model), steered(model, state):
        output = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True, logits_to_keep=1)
    return tuple(layer[0].float().cpu() for layer in output.attentions)


def span_shares(
    probabilities: tuple[torch.Tensor, ...], emphasis: torch.Tensor, layer: int, heads: list[int],
) -> list[float]:
    """Share of attention on emphasised keys for each head of `layer`, averaged over the reading queries.

    probabilities[layer]: [heads, queries, keys]; emphasis: [keys] bool.
    """
    first_reader = min(int(emphasis.nonzero().max()) + 1, emphasis.shape[0] - 1)
    weights = probabilities[layer][heads, first_reader:, :]  # [steered heads, readers, keys]
    return weights[..., emphasis].sum(-1).mean(-1).tolist()


def viewed_heads(model: PreTrainedModel, steering: RowSteering) -> HeadConfig:
    """The heads the view shows: the steered ones (PASTA, InstABoost), or every head for Spotlight (whose
    dynamic bias reaches every head of every layer and names none)."""
    return steering.heads if steering.heads.layers else HeadConfig.all_heads(*model_shape(model))


def attention_view(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: PreparedPrompt,
) -> dict[str, Any]:
    """{"layers": [{layer, heads, plain, steered}], "tokens": [...], "emphasis": [...], "last_token": {...}}.

    plain / steered: per steered head (`viewed_heads`), the share (0..1) of attention on the emphasised span.
    last_token: the last prompt token's attention over every token, averaged over those heads.
    """
    plain = attention_probabilities(model, prompt, steer=False)
    steered = attention_probabilities(model, prompt, steer=True)
    emphasis = torch.tensor(prompt.emphasis)
    layers, plain_rows, steered_rows = [], [], []
    for layer, heads in viewed_heads(model, prompt.steering).layers:
        heads = list(heads)
        layers.append({"layer": layer, "heads": heads, "plain": span_shares(plain, emphasis, layer, heads),
                       "steered": span_shares(steered, emphasis, layer, heads)})
        plain_rows.append(plain[layer][heads, -1, :])
        steered_rows.append(steered[layer][heads, -1, :])
    return {
        "tokens": [tokenizer.decode([token]) for token in prompt.input_ids],
        "emphasis": prompt.emphasis,
        "layers": layers,
        "last_token": {"plain": torch.cat(plain_rows).mean(0).tolist(),
                       "steered": torch.cat(steered_rows).mean(0).tolist()},
    }
