"""Spotlight on the stock kernels equals a direct re-implementation of the reference code ("layer") and brings
each head and query exactly to the target ("head"); padding, mixed batches and the KV cache behave."""

from __future__ import annotations

import contextvars
import math
from dataclasses import dataclass

import pytest
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from attnsteer import HeadConfig, SteeringConfig
from attnsteer.steering import RowSteering, prepare_state, reading_attention, steered
from attnsteer.steering.attention import model_eager_attention
from attnsteer.steering.config import SpotlightTarget
from tests.steering.reference import reference_implementation
from tests.steering.test_equivalence import PROMPTS
from tests.steering.test_equivalence import encode as encode_halves
from tests.tiny_models import tiny_model

REFERENCE = "spotlight_reference"
NO_HEADS = HeadConfig(())


@dataclass
class Reference:
    span: torch.Tensor  # [batch, tokens] float, 1 on emphasised tokens
    target: float
    granularity: str


_SPEC: contextvars.ContextVar[Reference | None] = contextvars.ContextVar("spotlight_reference", default=None)


def reference_attention(module, query, key, value, attention_mask, **kwargs):
    """The reference code's rule ("layer"), written out on the model's own eager probabilities; "head" as
    the exact rescaling of each head's and query's row. Valid without a cache (key index = position)."""
    _, probs = model_eager_attention(module)(module, query, key, value, attention_mask, **kwargs)
    spec = _SPEC.get()
    new = probs.clone()
    for row in range(probs.shape[0]):
        span = spec.span[row, : probs.shape[-1]].to(probs).view(1, 1, -1)
        if spec.granularity == "layer":
            current = (probs[row] * span).sum() / probs[row].sum()
            if current < spec.target:
                logits = torch.log(probs[row] + 1e-10) + span * math.log(spec.target / current)
                new[row] = torch.softmax(logits, dim=-1, dtype=torch.float32).to(probs.dtype)
        else:
            share = (probs[row] * span).sum(dim=-1, keepdim=True)
            scaled = torch.where(span.bool(), probs[row] * spec.target / share,
                                 probs[row] * (1 - spec.target) / (1 - share))
            new[row] = torch.where((share > 0) & (share < spec.target), scaled, probs[row])
    values = repeat_kv(value, query.shape[1] // value.shape[1])
    return torch.matmul(new, values).transpose(1, 2).contiguous(), new


AttentionInterface.register(REFERENCE, reference_attention)
AttentionMaskInterface.register(REFERENCE, eager_mask)


def reference_spotlight(model, spec: Reference):
    return reference_implementation(model, REFERENCE, _SPEC, spec)


def encode(tokenizer, prompts):
    """Token ids (left padded) + an emphasis mask on 3 tokens a third of the way into each prompt (a span
    that draws less than the target, also under the tiny sliding windows)."""
    enc, _ = encode_halves(tokenizer, prompts)
    emphasis = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
    for row, mask in enumerate(enc["attention_mask"].bool()):
        positions = mask.nonzero().flatten()
        start = len(positions) // 3
        emphasis[row, positions[start : start + 3]] = True
    return enc, emphasis


def spotlight(model, emphasis, mask, target=0.4, granularity="layer"):
    row = RowSteering(NO_HEADS, spotlight=SpotlightTarget(target, granularity))
    return steered(model, prepare_state(model, row, emphasis, mask))


def logits(model, enc, emphasis, **options):
    with torch.no_grad(), spotlight(model, emphasis, enc["attention_mask"].bool(), **options):
        return model(**enc).logits


def reference_logits(model, enc, emphasis, target=0.4, granularity="layer"):
    with torch.no_grad(), reference_spotlight(model, Reference(emphasis.float(), target, granularity)):
        return model(**enc).logits


@pytest.mark.parametrize("architecture", ["llama", "mistral", "qwen2", "gemma2", "gemma3", "gpt2"])
@pytest.mark.parametrize("granularity", ["layer", "head"])
@pytest.mark.parametrize("path", ["sdpa", "eager"])
def test_spotlight_equals_the_reference(architecture, granularity, path, tokenizer):
    model = tiny_model(architecture, path)
    enc, emphasis = encode(tokenizer, PROMPTS[:1])  # one row: the reference code's own setting
    steered_logits = logits(model, enc, emphasis, granularity=granularity)
    reference = reference_logits(model, enc, emphasis, granularity=granularity)
    with torch.no_grad():
        plain = model(**enc).logits
    assert (steered_logits - reference).abs().max() <= 1e-4
    assert (steered_logits - plain).abs().max() > 1e-3


def span_shares(model, enc, emphasis, state=None) -> dict[int, torch.Tensor]:
    """{layer: [batch, heads, queries]} the span's share of attention, read from the eager probabilities."""
    shares = {}
    record = lambda layer, probs: shares.__setitem__(layer, (probs.float() * emphasis[:, None, None, :]).sum(-1))  # noqa: E731
    with torch.no_grad(), reading_attention(model, record), steered(model, state):
        model(**enc)
    return shares


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_head_granularity_brings_every_head_and_query_to_the_target(architecture, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS)
    mask = enc["attention_mask"].bool()
    before = span_shares(model, enc, emphasis)
    # Layer 0 reads the plain input, so its shares before steering are the ones steered; a target at
    # their median leaves half of the (head, query) pairs below it and half above.
    seen = (before[0] > 0) & mask[:, None, :]
    target = float(before[0][seen].median())
    row = RowSteering(NO_HEADS, spotlight=SpotlightTarget(target, "head"))
    after = span_shares(model, enc, emphasis, prepare_state(model, row, emphasis, mask))
    raised, kept = seen & (before[0] < target), seen & (before[0] >= target)
    assert raised.sum() > 10 and kept.sum() > 10
    assert (after[0][raised] - target).abs().max() <= 1e-3
    assert (after[0][kept] - before[0][kept]).abs().max() <= 1e-5


@pytest.mark.parametrize("granularity", ["layer", "head"])
def test_padded_rows_and_mixed_methods_equal_each_row_alone(granularity, tokenizer):
    model = tiny_model("gemma3")
    enc, emphasis = encode(tokenizer, PROMPTS)
    mask = enc["attention_mask"].bool()
    pasta = RowSteering(HeadConfig.from_dict({0: [1], 2: [0]}), SteeringConfig(alpha=0.1))
    spot = RowSteering(NO_HEADS, spotlight=SpotlightTarget(0.4, granularity))
    with torch.no_grad(), steered(model, prepare_state(model, [spot, pasta], emphasis, mask)):
        batch = model(**enc).logits
    for row, steering in enumerate((spot, pasta)):
        alone = {key: value[row : row + 1][:, mask[row]] for key, value in enc.items()}
        with torch.no_grad(), steered(model, prepare_state(model, steering, emphasis[row : row + 1][:, mask[row]],
                                                            mask[row : row + 1][:, mask[row]])):
            single = model(**alone).logits
        assert (batch[row][mask[row]] - single[0]).abs().max() <= 1e-4


@pytest.mark.parametrize(("granularity", "causal"), [("head", True), ("layer", False)])
def test_only_head_granularity_is_causal(granularity, causal, tokenizer):
    """A prompt read in one pass vs its last token read on the cache of the rest: equal for "head" (so it
    can be prefix-cached), different for "layer" (its share averages over the queries of one pass)."""
    model = tiny_model("llama")
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    enc.pop("position_ids")
    ids, mask = enc["input_ids"], enc["attention_mask"].bool()
    state = lambda: prepare_state(model, RowSteering(NO_HEADS, spotlight=SpotlightTarget(0.4, granularity)),  # noqa: E731
                                  emphasis, mask)
    with torch.no_grad(), steered(model, state()):
        whole = model(input_ids=ids).logits[0, -1]
    with torch.no_grad(), steered(model, state()):
        cache = model(input_ids=ids[:, :-1], use_cache=True).past_key_values
        last = model(input_ids=ids[:, -1:], past_key_values=cache).logits[0, -1]
    difference = (whole - last).abs().max().item()
    assert difference <= 1e-4 if causal else difference > 1e-3


def test_target_is_validated():
    with pytest.raises(ValueError, match=r"target must be a share of attention in \(0, 1\)"):
        SpotlightTarget(1.5, "head")
    with pytest.raises(ValueError, match="granularity must be one of"):
        SpotlightTarget(0.2, "token")


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "gpt2"])  # GQA and MHA; caches indexed by position
@pytest.mark.parametrize("granularity", ["layer", "head"])
def test_decode_steps_equal_the_reference_on_the_kv_cache(architecture, granularity, tokenizer):
    """A decode step (one query per row) takes its own path (`spotlight._decode_step`, no second kernel call):
    feeding a prompt's last tokens one at a time through the KV cache gives the reference's logits, run the
    same way, at every step."""
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    ids, mask = enc["input_ids"], enc["attention_mask"]

    def stepwise() -> list[torch.Tensor]:
        output = model(input_ids=ids[:, :-3], attention_mask=mask[:, :-3], use_cache=True)
        steps = [output.logits[:, -1]]
        for position in range(ids.shape[1] - 3, ids.shape[1]):
            output = model(input_ids=ids[:, position : position + 1], attention_mask=mask[:, : position + 1],
                           cache=output.cache, use_cache=True)
            steps.append(output.logits[:, -1])
        return steps

    with torch.no_grad(), spotlight(model, emphasis, mask.bool(), granularity=granularity):
        ours = stepwise()
    with torch.no_grad(), reference_spotlight(model, Reference(emphasis.float(), 0.4, granularity)):
        reference = stepwise()
    with torch.no_grad():
        plain = stepwise()
    for step, (mine, theirs, unsteered) in enumerate(zip(ours, reference, plain, strict=True)):
        assert (mine - theirs).abs().max() <= 1e-4, f"step {step}"
        assert step == 0 or (mine - unsteered).abs().max() > 1e-4, f"step {step} is not steered"
