"""The bias path equals the explicit softmax-reweight reference on every tested architecture."""

from __future__ import annotations

import pytest
import torch

from attnsteer import HeadConfig, SteeringConfig
from attnsteer.steering import RowSteering, prepare_state, steered
from tests.steering.reference import ReferenceSpec, multiplier, reference_steering
from tests.tiny_models import ARCHITECTURES, SLIDING_WINDOW_ARCHITECTURES, tiny_model

PROMPTS = [
    "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome.",
    "She is a nurse who works at the hospital.",
]
HEADS = HeadConfig.from_dict({0: [1], 2: [0, 3]})


def encode(tokenizer, prompts, padding_side="left"):
    """Token ids + an emphasis mask over the second half of each prompt's tokens."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side=padding_side)
    # Positions count real tokens only (as `generate` does), so GPT-2's absolute positions match.
    enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    emphasis = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
    for row, mask in enumerate(enc["attention_mask"].bool()):
        positions = mask.nonzero().flatten()
        emphasis[row, positions[len(positions) // 2 :]] = True
    return enc, emphasis


def steer(model, heads, emphasis, mask, config=None, fast_prefill=True):
    """A block steering every call of `model`: the one public path (prepare a state, then activate it)."""
    row = RowSteering(heads, config or SteeringConfig())
    return steered(model, prepare_state(model, row, emphasis, mask, fast_prefill))


def steered_logits(model, enc, emphasis, heads=HEADS, alpha=0.01, fast_prefill=True):
    mask = enc["attention_mask"].bool()
    with torch.no_grad(), steer(model, heads, emphasis, mask, SteeringConfig(alpha=alpha), fast_prefill):
        return model(**enc).logits


def reference_logits(model, enc, emphasis, heads=HEADS, alpha=0.01):
    spec = ReferenceSpec(heads, multiplier(emphasis, enc["attention_mask"], alpha))
    with torch.no_grad(), reference_steering(model, spec):
        return model(**enc).logits


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("path", ["sdpa-split-heads", "sdpa-full-mask", "eager"])
def test_bias_path_equals_reference(architecture, path, tokenizer):
    model = tiny_model(architecture, "eager" if path == "eager" else "sdpa")
    enc, emphasis = encode(tokenizer, PROMPTS)
    assert enc["input_ids"].shape[1] > 6  # longer than the tiny sliding windows
    steered = steered_logits(model, enc, emphasis, fast_prefill=path != "sdpa-full-mask")
    reference = reference_logits(model, enc, emphasis)
    with torch.no_grad():
        plain = model(**enc).logits
    real = enc["attention_mask"].bool()
    assert (steered - reference)[real].abs().max() <= 1e-4
    assert (steered - plain)[real].abs().max() > 1e-3  # steering really changed something


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_every_head_steered_and_per_row_head_weights(architecture, tokenizer):
    """No unsteered group left (all heads), and rows steering different heads (profiling's batching)."""
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS)
    every = HeadConfig.parse("all", 3, 4)
    assert (steered_logits(model, enc, emphasis, every) - reference_logits(model, enc, emphasis, every)).abs()[
        enc["attention_mask"].bool()].max() <= 1e-4
    mask = enc["attention_mask"].bool()
    rows = [RowSteering(HeadConfig.from_dict({0: [0]})), RowSteering(HeadConfig.from_dict({0: [1]}))]
    state = prepare_state(model, rows, emphasis, mask)  # row 0 steers head 0, row 1 head 1
    assert torch.equal(state.weights[0], torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
    with torch.no_grad(), steered(model, state):
        per_row = model(**enc).logits
    for row, head in enumerate((0, 1)):
        alone = steered_logits(model, enc, emphasis, HeadConfig.from_dict({0: [head]}))
        assert (per_row[row] - alone[row])[mask[row]].abs().max() <= 1e-4


def test_folded_bias_keeps_precision_in_bfloat16():
    from attnsteer.steering.split_heads import _fold_bias

    q = torch.randn(1, 2, 5, 16, dtype=torch.bfloat16)
    bias = torch.tensor([-4.605170, 0.0, -0.693147, 2.302585, -9.21034]).repeat(1, 2, 1)
    scale = 16**-0.5
    _, k, _ = _fold_bias(q, torch.zeros(1, 2, 5, 16, dtype=torch.bfloat16), torch.zeros_like(q), bias, scale)
    recovered = (k[..., 16].float() + k[..., 17].float()) * scale
    assert (recovered - bias).abs().max() <= 1e-4  # bf16 alone would be off by ~2e-2


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "gemma2"])
def test_include_mode_equals_exclude_mode(architecture, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    mask = enc["attention_mask"].bool()
    results = []
    for mode in ("exclude", "include"):
        with torch.no_grad(), steer(model, HEADS, emphasis, mask, SteeringConfig(0.01, mode)):
            results.append(model(**enc).logits)
    # Without a cache there are no generated tokens, so both modes give the same softmax.
    assert (results[0] - results[1]).abs().max() <= 1e-4


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "gpt2"])
def test_alpha_one_and_no_heads_leave_logits_unchanged(architecture, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS)
    with torch.no_grad():
        plain = model(**enc).logits
    no_heads = steered_logits(model, enc, emphasis, heads=HeadConfig(()))
    assert torch.equal(no_heads, plain)
    alpha_one = steered_logits(model, enc, emphasis, alpha=1.0)
    real = enc["attention_mask"].bool()  # padded query rows are garbage in both
    assert (alpha_one - plain)[real].abs().max() <= 1e-5


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_padded_batch_equals_rows_alone(architecture, padding_side, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS, padding_side)
    batched = steered_logits(model, enc, emphasis)
    for row, prompt in enumerate(PROMPTS):
        alone_enc, alone_emphasis = encode(tokenizer, [prompt])
        alone = steered_logits(model, alone_enc, alone_emphasis)[0]
        real = enc["attention_mask"][row].bool()
        assert (batched[row][real] - alone).abs().max() <= 1e-4


@pytest.mark.parametrize("architecture", SLIDING_WINDOW_ARCHITECTURES)
def test_sliding_window_prompt_longer_than_window(architecture, tokenizer):
    model = tiny_model(architecture)
    window = model.config.sliding_window
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    assert enc["input_ids"].shape[1] > 3 * window
    steered = steered_logits(model, enc, emphasis)
    reference = reference_logits(model, enc, emphasis)
    assert (steered - reference).abs().max() <= 1e-4
