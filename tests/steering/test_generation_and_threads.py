"""Steering with a KV cache, across threads, and installing/restoring the attention implementation."""

from __future__ import annotations

import threading

import pytest
import torch

from attnsteer import HeadConfig, SteeringConfig
from attnsteer.errors import UnsupportedModelError
from attnsteer.steering import reading_attention
from tests.steering.test_equivalence import HEADS, PROMPTS, encode, steer
from tests.tiny_models import tiny_model

NEW_TOKENS = 8


def cached_generate(model, enc, emphasis):
    mask = enc["attention_mask"].bool()
    with torch.no_grad(), steer(model, HEADS, emphasis, mask):
        out = generate(model, enc)
    return out.sequences[:, enc["input_ids"].shape[1] :], torch.stack(out.logits, dim=1)


def generate(model, enc):
    return model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0, eos_token_id=None,
                          return_dict_in_generate=True, output_logits=True)


def recomputed_generate(model, enc, emphasis):
    """Greedy decoding by full recomputation (no cache) each step; new tokens are never down-weighted."""
    ids, attention = enc["input_ids"], enc["attention_mask"]
    prompt_mask, emphasis_mask = attention.bool(), emphasis
    step_logits = []
    for _ in range(NEW_TOKENS):
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad(), steer(model, HEADS, emphasis_mask, prompt_mask):
            logits = model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False).logits
        step_logits.append(logits[:, -1])
        next_token = logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, next_token], dim=1)
        attention = torch.cat([attention, torch.ones_like(next_token)], dim=1)
        prompt_mask = torch.cat([prompt_mask, torch.zeros_like(next_token, dtype=torch.bool)], dim=1)
        emphasis_mask = torch.cat([emphasis_mask, torch.zeros_like(next_token, dtype=torch.bool)], dim=1)
    return ids[:, enc["input_ids"].shape[1] :], torch.stack(step_logits, dim=1)


@pytest.mark.parametrize("architecture", ["llama", "mistral", "gemma2", "gemma3", "gpt2"])
def test_cached_generate_equals_full_recomputation(architecture, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS)  # two rows, left padded; longer than sliding windows
    enc.pop("position_ids")
    cached, cached_logits = cached_generate(model, enc, emphasis)
    recomputed, recomputed_logits = recomputed_generate(model, enc, emphasis)
    assert torch.equal(cached, recomputed)
    assert (cached_logits - recomputed_logits).abs().max() <= 1e-4
    with torch.no_grad():
        plain_logits = torch.stack(generate(model, enc).logits, dim=1)
    assert (cached_logits - plain_logits).abs().max() > 1e-3  # steering changed the output


def test_two_threads_steer_independently(tokenizer):
    model = tiny_model("llama")
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    mask = enc["attention_mask"].bool()
    configs = {"strong": (HEADS, SteeringConfig(0.01)), "other": (HeadConfig.from_dict({1: [2]}), SteeringConfig(0.3))}

    def run(name):
        heads, config = configs[name]
        with torch.no_grad(), steer(model, heads, emphasis, mask, config):
            return model(**enc).logits

    alone = {name: run(name) for name in configs}
    results: dict[str, list[torch.Tensor]] = {name: [] for name in configs}
    barrier = threading.Barrier(2)

    def worker(name):
        barrier.wait()
        for _ in range(10):
            results[name].append(run(name))

    threads = [threading.Thread(target=worker, args=(name,)) for name in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in configs:
        assert len(results[name]) == 10
        assert all((result - alone[name]).abs().max() <= 1e-5 for result in results[name])
    assert (alone["strong"] - alone["other"]).abs().max() > 1e-3


def test_original_attention_restored_after_steering(tokenizer):
    model = tiny_model("llama", "eager")
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    with torch.no_grad(), steer(model, HEADS, emphasis, enc["attention_mask"].bool()):
        assert model.config._attn_implementation == "attnsteer_eager"
        model(**enc)
    assert model.config._attn_implementation == "eager"


def test_a_steering_block_that_steered_nothing_is_an_error(tokenizer):
    """Never a silent no-op: leaving a block whose steered layers never ran steered raises."""
    model = tiny_model("llama")
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    with pytest.raises(UnsupportedModelError, match=r"layers \[0, 2\] were never steered"):
        with steer(model, HEADS, emphasis, enc["attention_mask"].bool()):
            pass  # the model is never called


def test_reading_attention_while_another_thread_steers(tokenizer):
    """A reading pass (LLMSteer, the attention view) and a steering block overlap in two threads.

    Before: reading switched the model-wide attention implementation, and a steering block that began
    during the reading took the recording implementation for the original and restored it on exit,
    leaving the model recording for good. Now nothing is switched: the implementation is the same
    after both, and each thread gets exactly what it gets alone.
    """
    model = tiny_model("llama")
    original = model.config._attn_implementation
    enc, emphasis = encode(tokenizer, PROMPTS[:1])
    mask = enc["attention_mask"].bool()

    def read(record):
        with torch.no_grad(), reading_attention(model, record):
            return model(**enc, output_attentions=True).attentions

    def steer_once():
        with torch.no_grad(), steer(model, HEADS, emphasis, mask):
            return model(**enc).logits

    read_alone, steered_alone = read(None), steer_once()
    with torch.no_grad():
        plain = model(**enc).logits
    reading_started, steering_entered = threading.Event(), threading.Event()
    results = {}

    def record(layer, probabilities):  # blocks the reading pass until the other thread is steering
        reading_started.set()
        steering_entered.wait(timeout=30)

    def steering_thread():
        reading_started.wait(timeout=30)
        with torch.no_grad(), steer(model, HEADS, emphasis, mask):
            steering_entered.set()
            results["steered"] = model(**enc).logits

    thread = threading.Thread(target=steering_thread)
    thread.start()
    results["read"] = read(record)
    thread.join()
    assert steering_entered.is_set()
    assert model.config._attn_implementation == original
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results["read"], read_alone, strict=True))
    assert (results["steered"] - steered_alone).abs().max() <= 1e-5
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, plain)
        attentions = model(**enc, output_attentions=True).attentions
    assert all(layer is None for layer in attentions)  # plain sdpa again: no readout left behind


def test_reading_attention_returns_the_eager_probabilities(tokenizer):
    """On an sdpa model, the readout's probabilities equal the stock eager attention's, unsteered and steered."""
    sdpa, eager = tiny_model("gemma3", "sdpa"), tiny_model("gemma3", "eager")
    enc, emphasis = encode(tokenizer, PROMPTS)  # padded rows, longer than the sliding window
    recorded = {}
    with torch.no_grad(), reading_attention(sdpa, lambda layer, p: recorded.setdefault(layer, p)):
        read = sdpa(**enc, output_attentions=True).attentions
    with torch.no_grad():
        expected = eager(**enc, output_attentions=True).attentions
    real = enc["attention_mask"].bool()
    for layer, (got, want) in enumerate(zip(read, expected, strict=True)):
        assert torch.equal(recorded[layer], got)
        assert (got - want)[real[:, None, :, None].expand_as(got)].abs().max() <= 1e-5
    with torch.no_grad(), reading_attention(sdpa), steer(sdpa, HEADS, emphasis, real):
        steered = sdpa(**enc, output_attentions=True).attentions
    assert (steered[0] - read[0]).abs().max() > 1e-3  # the steered head's probabilities moved
