"""Steering with a KV cache, across threads, and installing/restoring the attention implementation."""

from __future__ import annotations

import threading

import pytest
import torch

from attnsteer import HeadConfig, SteeringConfig
from attnsteer.steering import steering
from tests.steering.test_equivalence import HEADS, PROMPTS, encode
from tests.tiny_models import tiny_model

NEW_TOKENS = 8


def cached_generate(model, enc, emphasis):
    mask = enc["attention_mask"].bool()
    with torch.no_grad(), steering(model, HEADS, emphasis, mask):
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
        with torch.no_grad(), steering(model, HEADS, emphasis_mask, prompt_mask):
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
        with torch.no_grad(), steering(model, heads, emphasis, mask, config):
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
    with steering(model, HEADS, emphasis, enc["attention_mask"].bool()):
        assert model.config._attn_implementation == "attnsteer_eager"
    assert model.config._attn_implementation == "eager"
