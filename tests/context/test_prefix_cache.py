"""Steered automatic prefix caching: block hashes over (tokens, emphasis flags, settings), cached prefills equal
uncached ones (logits and greedy continuations), Spotlight "layer" is never reused, eviction by bytes with leaves
before parents, counters, and the full-layer caches sliding-window models need."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from attnsteer.context import (
    ContextError,
    Prefill,
    PrefixCache,
    block_hashes,
    prefill,
    prefix_settings_key,
)
from attnsteer.steering import make_method, prepare_state, steered
from tests.tiny_models import tiny_model

SETTINGS = {  # label -> (steering method, its parameters)
    "pasta": ("pasta", {"heads": "0.1,1.0,1.3,2.2"}),
    "instaboost": ("instaboost", {"boost": 10.0}),
    "spotlight-head": ("spotlight", {"target": 0.5, "granularity": "head"}),
    "spotlight-layer": ("spotlight", {"target": 0.5, "granularity": "layer"}),
}
CACHEABLE = ["plain", "pasta", "instaboost", "spotlight-head"]  # "plain": unsteered
ARCHITECTURES = ["llama", "mistral", "gemma3", "gpt2"]  # GQA; sliding windows of 6 (mistral, gemma3); MHA
BLOCK = 4


def row_for(model, label: str):
    """The RowSteering of a label of SETTINGS on `model` (None for "plain")."""
    if label == "plain":
        return None
    name, parameters = SETTINGS[label]
    return make_method(name, model, **parameters).row()


def prompt(length: int = 22, span: tuple[int, int] = (5, 14), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[1, length] token ids and [1, length] bool emphasis over `span` (clipped to the prompt)."""
    ids = torch.randint(3, 380, (1, 40), generator=torch.Generator().manual_seed(seed))[:, :length]
    flags = torch.zeros(1, length, dtype=torch.bool)
    flags[0, span[0]:span[1]] = True
    return ids, flags


def own_prefill(model, row, ids, flags) -> Prefill:
    """The reference: the model's own forward and own cache (sliding layers keep a window), steered by `row`."""
    state = None if row is None else prepare_state(model, row, flags, torch.ones_like(flags))
    with torch.inference_mode(), steered(model, state):
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    return Prefill(out.cache, out.logits[0, -1].float(), 0)


def greedy(model, row, ids, flags, result, steps: int = 4) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens and each step's logits [steps, vocab], decoded from `result.cache` under the prompt's steering."""
    total = ids.shape[1]
    state = None if row is None else prepare_state(model, row, flags, torch.ones_like(flags))
    cache, step_logits, tokens, seen = result.cache, result.logits, [], []
    with torch.inference_mode(), steered(model, state):
        for step in range(steps):
            tokens.append(int(step_logits.argmax()))
            out = model(input_ids=torch.tensor([[tokens[-1]]]), position_ids=torch.tensor([[total + step]]),
                        attention_mask=torch.ones(1, total + step + 1, dtype=torch.long), cache=cache, use_cache=True)
            cache, step_logits = out.cache, out.logits[0, -1].float()
            seen.append(step_logits)
    return tokens, torch.stack(seen)


# ----- block hashes and settings keys -------------------------------------------------------------
def test_block_hashes_chain_tokens_flags_and_settings():
    ids, flags = list(range(10, 30)), [False] * 20
    base = block_hashes(ids, flags, "k", BLOCK)
    assert len(base) == 5 and len(set(base)) == 5 and base == block_hashes(ids, flags, "k", BLOCK)
    assert len(block_hashes(ids[:19], flags[:19], "k", BLOCK)) == 4  # a partial last block gets no hash
    flipped = flags.copy()
    flipped[9] = True  # same tokens, one flag different in block 2
    other = block_hashes(ids, flipped, "k", BLOCK)
    assert other[:2] == base[:2] and all(a != b for a, b in zip(other[2:], base[2:], strict=True))
    # blocks 3 and 4 hold the same tokens and flags in both, yet differ: the chain carries block 2's difference
    assert block_hashes(ids[12:], flags[12:], "k", BLOCK) != other[3:]
    assert set(block_hashes(ids, flags, "other settings", BLOCK)).isdisjoint(base)
    assert block_hashes(ids, flags, "k", 5)[0] != base[0]


@pytest.mark.parametrize(("args", "message"), [
    ((list(range(4)), [False] * 4, "k", 0), "block_size must be a positive integer"),
    ((list(range(4)), [False] * 3, "k", 2), "4 token ids but 3 emphasis flags"),
    ((list(range(4)), [False] * 4, None, 2), "settings_key must be a non-empty string"),
])
def test_block_hashes_refuse_bad_arguments(args, message):
    with pytest.raises(ContextError, match=message):
        block_hashes(*args)


def test_settings_keys_separate_models_and_settings_and_refuse_spotlight_layer():
    llama, gemma = tiny_model("llama"), tiny_model("gemma3")
    keys = {label: prefix_settings_key(llama, row_for(llama, label)) for label in CACHEABLE}
    assert len(set(keys.values())) == 4 and prefix_settings_key(gemma, None) != keys["plain"]
    assert prefix_settings_key(llama, make_method("pasta", llama, heads="0.1,1.0,1.3,2.2", alpha=0.5).row()) \
        != keys["pasta"]
    assert prefix_settings_key(llama, row_for(llama, "spotlight-layer")) is None
    # keyed on what the attention applies: InstABoost x10 is PASTA include alpha 0.1 on every head
    same = make_method("pasta", llama, heads="all", alpha=0.1, mode="include").row()
    assert prefix_settings_key(llama, same) == keys["instaboost"]


# ----- cached prefills equal uncached ones ----------------------------------------------------------
@pytest.fixture(scope="module", params=ARCHITECTURES)
def model(request):
    return tiny_model(request.param)


@pytest.mark.parametrize("label", CACHEABLE)
def test_cached_prefill_equals_uncached(model, label):
    row = row_for(model, label)
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    ids, flags = prompt(22, span=(5, 14))
    prefill(model, row, ids[:, :13], flags[:, :13], cache)  # stores blocks 0-2; 12 ends inside the span
    reference, uncached = own_prefill(model, row, ids, flags), prefill(model, row, ids, flags)
    cached = prefill(model, row, ids, flags, cache)
    assert cached.reused_tokens == 12 and uncached.reused_tokens == 0
    expected_tokens, expected_logits = greedy(model, row, ids, flags, reference)
    for result in (uncached, cached):
        assert all(layer.keys.shape[2] == 22 for layer in result.cache.layers)  # full layers
        assert (result.logits - reference.logits).abs().max() <= 1e-4
        tokens, step_logits = greedy(model, row, ids, flags, result)  # decodes into (grows) the returned cache
        assert tokens == expected_tokens and (step_logits - expected_logits).abs().max() <= 1e-4
    again = prefill(model, row, ids, flags, cache)  # stored blocks were not touched by that decode
    assert again.reused_tokens == 20 and (again.logits - reference.logits).abs().max() <= 1e-4
    if row is not None:
        plain = prefill(model, None, ids, flags)
        assert (plain.logits - reference.logits).abs().max() > 1e-3  # the steering really changes the result


def test_different_flags_reuse_only_the_blocks_before_the_first_difference():
    model = tiny_model("mistral")
    row = row_for(model, "pasta")
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    ids, flags = prompt(22, span=(5, 14))
    prefill(model, row, ids, flags, cache)
    moved = flags.clone()
    moved[0, 10] = False  # block 2 differs; blocks 3-4 hold the same tokens and flags, but follow it
    result = prefill(model, row, ids, moved, cache)
    assert result.reused_tokens == 8
    assert (result.logits - prefill(model, row, ids, moved).logits).abs().max() <= 1e-4


def test_spotlight_layer_is_never_reused():
    model = tiny_model("llama")
    row = row_for(model, "spotlight-layer")
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    ids, flags = prompt(22)
    results = [prefill(model, row, ids, flags, cache) for _ in range(2)]
    assert [r.reused_tokens for r in results] == [0, 0] and len(cache) == 0
    assert cache.stats()["refused"] == 2 and cache.hits == cache.misses == 0
    assert torch.equal(results[1].logits, prefill(model, row, ids, flags).logits)
    unsteered = prefill(model, row, ids, torch.zeros_like(flags), cache)  # nothing emphasised: plain, cached
    assert unsteered.reused_tokens == 0 and len(cache) == 5


def test_short_prompts_and_the_last_token_is_always_prefilled():
    model = tiny_model("gemma3")
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    ids, flags = prompt(3, span=(1, 2))
    row = row_for(model, "pasta")
    short = prefill(model, row, ids, flags, cache)  # shorter than one block: nothing to store
    assert short.reused_tokens == 0 and len(cache) == 0
    assert (short.logits - prefill(model, row, ids, flags).logits).abs().max() <= 1e-4
    ids, flags = prompt(8, span=(1, 2))
    first, second = prefill(model, row, ids, flags, cache), prefill(model, row, ids, flags, cache)
    assert (first.reused_tokens, second.reused_tokens, len(cache)) == (0, 4, 2)  # block 1 holds the last token
    assert second.cache.get_seq_length() == 8 and second.logits.shape == (model.config.vocab_size,)
    assert (second.logits - first.logits).abs().max() <= 1e-4


def test_counters():
    model = tiny_model("llama")
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    ids, flags = prompt(22)
    for length in (13, 22, 22):
        prefill(model, None, ids[:, :length], flags[:, :length], cache)
    stats = cache.stats()
    assert {key: stats[key] for key in ("hits", "misses", "hit_tokens", "prefilled_tokens", "blocks", "refused")} \
        == {"hits": 2, "misses": 1, "hit_tokens": 12 + 20, "prefilled_tokens": 13 + 10 + 2, "blocks": 5, "refused": 0}
    assert stats["bytes"] == cache.nbytes == 5 * block_bytes(model) and stats["max_bytes"] == 10**8


def block_bytes(model) -> int:
    """Bytes of one block of the tiny models (float32): keys + values of every layer."""
    config = model.config
    return 2 * config.num_hidden_layers * config.num_key_value_heads * BLOCK * config.head_dim * 4


# ----- storage: eviction, leaves first, what is stored ------------------------------------------------
def fake_cache(length: int, seed: int) -> DynamicCache:
    """A 2-layer cache of random keys/values [1, 2 kv heads, length, 3] (what a prefill would return)."""
    generator = torch.Generator().manual_seed(seed)
    return DynamicCache([(torch.randn(1, 2, length, 3, generator=generator),
                          torch.randn(1, 2, length, 3, generator=generator)) for _ in range(2)])


BLOCK_BYTES = 2 * 2 * 2 * BLOCK * 3 * 4  # layers x (keys, values) x kv heads x tokens x head_dim x float32


def test_lookup_returns_the_stored_keys_and_values():
    cache, stored = PrefixCache(max_bytes=10**6, block_size=BLOCK), fake_cache(10, seed=0)
    ids, flags = list(range(10)), [False] * 10
    assert cache.store("k", ids, flags, stored) == 2
    hit = cache.lookup("k", ids, flags)
    assert hit is not None and hit.num_tokens == 8 and hit.cache.get_seq_length() == 8
    for got, want in zip(hit.cache.layers, stored.layers, strict=True):
        assert torch.equal(got.keys, want.keys[:, :, :8]) and torch.equal(got.values, want.values[:, :, :8])
    assert cache.lookup("other settings", ids, flags) is None
    assert cache.store("k", ids, flags, stored) == 0  # already stored


def test_eviction_by_bytes_drops_leaves_before_parents():
    cache = PrefixCache(max_bytes=3 * BLOCK_BYTES, block_size=BLOCK)
    a, b, c = (list(range(start, start + 9)) for start in (0, 100, 200))
    flags = [False] * 9
    cache.store("k", a, flags, fake_cache(9, 1))  # order (oldest first): a1, a0
    cache.store("k", b, flags, fake_cache(9, 2))  # a1 (a's leaf) goes: a0, b1, b0
    assert (len(cache), cache.nbytes, cache.stats()["evictions"]) == (3, 3 * BLOCK_BYTES, 1)
    assert cache.lookup("k", a, flags).num_tokens == 4  # a0 kept, now the most recent: b1, b0, a0
    cache.store("k", c[:5], flags[:5], fake_cache(5, 3))  # b1 goes: b0, a0, c0
    assert cache.lookup("k", b, flags).num_tokens == 4 and cache.lookup("k", a, flags).num_tokens == 4
    assert cache.lookup("k", c[:5] + [0], flags[:6]).num_tokens == 4 and cache.stats()["evictions"] == 2


def test_a_hit_keeps_its_first_block_most_recent():
    cache = PrefixCache(max_bytes=3 * BLOCK_BYTES, block_size=BLOCK)
    a, b, c, d = (list(range(start, start + 9)) for start in (0, 100, 200, 300))
    flags = [False] * 9
    cache.store("k", a, flags, fake_cache(9, 1))  # a1, a0
    cache.store("k", b[:5], flags[:5], fake_cache(5, 2))  # a1, a0, b0
    assert cache.lookup("k", a, flags).num_tokens == 8  # the hit's leaf first: b0, a1, a0
    cache.store("k", c[:5], flags[:5], fake_cache(5, 3))  # b0 goes: a1, a0, c0
    cache.store("k", d[:5], flags[:5], fake_cache(5, 4))  # a1 goes: a0, c0, d0
    assert cache.lookup("k", b[:6], flags[:6]) is None and cache.lookup("k", a, flags).num_tokens == 4


def test_blocks_larger_than_the_budget_and_caches_that_hold_a_window_are_not_stored():
    too_small = PrefixCache(max_bytes=BLOCK_BYTES - 1, block_size=BLOCK)
    assert too_small.store("k", list(range(9)), [False] * 9, fake_cache(9, 0)) == 0 and len(too_small) == 0
    model = tiny_model("mistral")
    ids = torch.arange(3, 25)[None]
    with torch.inference_mode():
        windowed = model(input_ids=ids).cache  # the model's own cache: sliding layers keep the last 5 keys
    cache = PrefixCache(max_bytes=10**8, block_size=BLOCK)
    assert cache.store("k", ids[0].tolist(), [False] * 22, windowed) == 0 and len(cache) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_bytes": 0}, "max_bytes must be a positive integer"),
    ({"max_bytes": 10, "block_size": 0}, "block_size must be a positive integer"),
])
def test_prefix_cache_settings_are_checked(kwargs, message):
    with pytest.raises(ContextError, match=message):
        PrefixCache(**kwargs)


def test_prefill_checks_its_inputs():
    model = tiny_model("llama")
    ids, flags = prompt(6)
    with pytest.raises(ContextError, match=r"input_ids of shape \[1, tokens > 0\], got \(6,\)"):
        prefill(model, None, ids[0], flags[0])
    with pytest.raises(ContextError, match=r"emphasis must be a \[1, tokens\] bool tensor .* got \(1, 5\)"):
        prefill(model, None, ids, flags[:, :5])


# ----- sliding windows ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mistral", "gemma3"])
def test_full_layers_give_the_windowed_models_logits(name):
    """The window is applied by the attention mask, so a cache of full layers (what the prefix cache needs to
    keep every block) gives the model's own logits; the model's own cache holds only a window on sliding layers."""
    model = tiny_model(name)
    ids = torch.randint(3, 380, (1, 22), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        own = model(input_ids=ids)
        full = model(input_ids=ids, cache=DynamicCache())
    assert min(layer.keys.shape[2] for layer in own.cache.layers) < 22  # the window matters at this length
    assert all(layer.keys.shape[2] == 22 for layer in full.cache.layers)
    assert (own.logits - full.logits).abs().max() <= 1e-5


def test_embedded_model_cached_equals_uncached(embedded_steerer):
    """Gemma 3 270M (sliding window 512): a ~700-token prompt, its first 600 tokens cached, greedy 8 tokens."""
    model, tokenizer = embedded_steerer.model, embedded_steerer.tokenizer
    text = " ".join(f"Fact {n}: the {n}th tower of the city of Paris is {n * 7} metres tall." for n in range(40))
    ids = torch.tensor([tokenizer(text)["input_ids"][:700]])
    flags = torch.zeros_like(ids, dtype=torch.bool)
    flags[0, 580:620] = True  # the cached prefix (592 tokens) ends inside the emphasis
    row = embedded_steerer.row_steering
    cache = PrefixCache(max_bytes=2 * 1024**3)
    prefill(model, row, ids[:, :600], flags[:, :600], cache)
    reference, cached = own_prefill(model, row, ids, flags), prefill(model, row, ids, flags, cache)
    assert ids.shape[1] == 700 and cached.reused_tokens == 592
    assert (cached.logits - reference.logits).abs().max() <= 1e-4
    tokens, step_logits = greedy(model, row, ids, flags, cached, steps=8)
    expected_tokens, expected_logits = greedy(model, row, ids, flags, reference, steps=8)
    assert tokens == expected_tokens and (step_logits - expected_logits).abs().max() <= 1e-4
