"""Steered automatic prefix caching: KV blocks shared by every request whose first tokens, their emphasis
flags, the model and the steering settings agree (vLLM's automatic prefix caching, plus the flags).

Why it is exact: under PASTA, InstABoost and per-query Spotlight (granularity "head") the bias is per key
and keys after a query are masked, so position i's keys and values depend only on the tokens <= i and
their emphasis flags (tests/steering/test_causality.py). A block hash chains (parent hash, settings key,
the block's token ids and flags), so one hash names a whole prefix. Spotlight "layer" averages the span's
share over every query of one forward pass, so a prefix prefilled alone reads differently:
`prefix_settings_key` returns None for it and `prefill` runs such requests in full, never reusing.

Sliding-window layers: a cache built from the model's config (what a model makes when given none) keeps only
the last window - 1 keys on those layers, so a block would be lost before it could be stored. The prefix
cache's prefills run on full layers (`DynamicCache()` without a config) instead: transformers builds the
sliding mask from the config (`masking_utils.create_sliding_window_causal_mask`, with the cache's offset 0
and full length), so the window still applies and the logits are the same (bit-identical on the tiny
Mistral, Gemma 2/3 and Starcoder2 with window 6, tested on Mistral and Gemma 3; Gemma 3 270M, window 512,
a 700-token prompt: identical prefill logits and greedy text). `prefill` always returns such a cache, so a
caller (the server merging rows into a running batch) finds every position on every layer; the cost is
memory on sliding layers.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import Cache, DynamicCache

from attnsteer.context.config import ContextError, config_hash
from attnsteer.context.lru import ByteLRU
from attnsteer.model_info import model_identity
from attnsteer.steering.activation import prepare_state, steered
from attnsteer.steering.config import RowSteering

# One block: per layer, (keys, values) each [kv_heads, block_size, head_dim].
KVBlock = tuple[tuple[torch.Tensor, torch.Tensor], ...]


def reuse_refusal(row_steering: RowSteering | None) -> str | None:
    """Why a KV cache prefilled under `row_steering` cannot be reused by later tokens; None when it can
    (position i reads tokens <= i only). The one rule for `SteeredContext` and the prefix cache."""
    spotlight = row_steering.spotlight if row_steering is not None else None
    if spotlight is not None and spotlight.granularity == "layer":
        return ("spotlight with granularity 'layer' averages the span's share over the queries of one forward "
                "pass, so a prefix prefilled once cannot be reused exactly by later tokens; use "
                "granularity='head' (causal) or another method")
    return None


def prefix_settings_key(model: Any, row_steering: RowSteering | None) -> str | None:
    """sha256 of what, besides tokens and flags, decides a prefix's KV: the model (identity, class, dtype)
    and the steering it applies (heads, alpha, mode, Spotlight target; "plain" for None).

    Keyed on the `RowSteering` the attention applies rather than the method's name, so two methods
    applying the same bias (InstABoost boost b = PASTA include, alpha 1/b, every head) share blocks.
    None when the steering cannot be prefix-cached (`reuse_refusal`: Spotlight granularity "layer").
    """
    if reuse_refusal(row_steering) is not None:
        return None
    steering: Any = "plain"
    if row_steering is not None:
        spotlight = row_steering.spotlight
        steering = {"heads": str(row_steering.heads), "config": row_steering.config.to_dict(),
                    "spotlight": None if spotlight is None else asdict(spotlight)}
    return config_hash({"model": model_identity(model), "class": type(model).__name__,
                        "dtype": str(getattr(model, "dtype", None)), "steering": steering})


def block_hashes(token_ids: Sequence[int], emphasis: Sequence[bool], settings_key: str,
                 block_size: int) -> list[str]:
    """One sha256 hex digest per full block of `block_size` tokens (a partial last block gets none).

    Block k's hash covers block k-1's hash, `settings_key`, and the block's token ids and emphasis flags,
    so equal hashes mean equal prefixes (tokens and flags) up to and including that block.
    """
    _check_block_size(block_size)
    if not isinstance(settings_key, str) or not settings_key:
        raise ContextError(f"settings_key must be a non-empty string (see prefix_settings_key), got {settings_key!r}")
    if len(token_ids) != len(emphasis):
        raise ContextError(f"got {len(token_ids)} token ids but {len(emphasis)} emphasis flags; give one flag a token")
    hashes: list[str] = []
    parent = ""
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        digest = hashlib.sha256(f"{parent}\0{settings_key}\0".encode())
        digest.update(array("q", (int(t) for t in token_ids[start:start + block_size])).tobytes())
        digest.update(bytes(bool(flag) for flag in emphasis[start:start + block_size]))
        parent = digest.hexdigest()
        hashes.append(parent)
    return hashes


@dataclass(frozen=True)
class CachedPrefix:
    """A cache hit: `cache` (a transformers `DynamicCache`, batch 1, full layers) holds the KV of the
    request's first `num_tokens` tokens (a multiple of the block size)."""

    cache: Cache
    num_tokens: int


class PrefixCache:
    """KV blocks of steered (or plain) prefixes, shared by every prompt that contains them, LRU by bytes.

    max_bytes: the budget for all blocks' keys and values. block_size: tokens per block (16, as vLLM).
    A lookup refreshes the hit's blocks so that its first block is the most recent: leaves are evicted
    before their parents. Counters (`stats()`): hits / misses (lookups that reused something or nothing),
    hit_tokens (tokens reused), prefilled_tokens (tokens the lookups left to run), refused (requests whose
    steering cannot be cached), blocks, bytes, max_bytes, evictions.
    """

    def __init__(self, max_bytes: int, block_size: int = 16) -> None:
        self.block_size = _check_block_size(block_size)
        self._blocks: ByteLRU[str, KVBlock] = ByteLRU(max_bytes, _block_bytes)
        self._lock = threading.Lock()
        self.hits = self.misses = self.hit_tokens = self.prefilled_tokens = self.refused = 0

    @property
    def max_bytes(self) -> int:
        """The byte budget of all blocks."""
        return self._blocks.max_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored blocks."""
        return self._blocks.nbytes

    def __len__(self) -> int:
        """Blocks stored."""
        return len(self._blocks)

    def lookup(self, settings_key: str, token_ids: Sequence[int], emphasis: Sequence[bool]) -> CachedPrefix | None:
        """The longest cached block-aligned prefix of the prompt, leaving at least one token to prefill; None
        when not even its first block is cached. Counts the lookup (hit or miss, tokens reused and left)."""
        usable = (len(token_ids) - 1) // self.block_size
        hashes = block_hashes(token_ids[:usable * self.block_size], emphasis[:usable * self.block_size],
                              settings_key, self.block_size)
        found: list[KVBlock] = []
        for digest in hashes:
            block = self._blocks.peek(digest)
            if block is None:
                break
            found.append(block)
        self._refresh(hashes[:len(found)])
        reused = len(found) * self.block_size
        with self._lock:
            if found:
                self.hits += 1
            else:
                self.misses += 1
            self.hit_tokens += reused
            self.prefilled_tokens += len(token_ids) - reused
        return CachedPrefix(_join_blocks(found), reused) if found else None

    def store(self, settings_key: str, token_ids: Sequence[int], emphasis: Sequence[bool], cache: Cache) -> int:
        """Add the full blocks of a prefilled prompt not stored yet; returns how many were added.

        cache: the prompt's KV, every layer holding keys/values [1, kv_heads, len(token_ids), head_dim] (full
        layers; a cache that does not, e.g. sliding layers holding only a window, stores nothing).
        """
        hashes = block_hashes(token_ids, emphasis, settings_key, self.block_size)
        layers = _full_layers(cache, len(token_ids)) if hashes else None
        if layers is None:
            return 0
        added = 0
        for index in reversed(range(len(hashes))):  # leaves first, so a prefix's first block ends most recent
            if not self._blocks.touch(hashes[index]):
                added += self._blocks.put(hashes[index], _cut_block(layers, index, self.block_size))
        return added

    def note_refused(self) -> None:
        """Count a request whose steering cannot be prefix-cached (it prefilled in full)."""
        with self._lock:
            self.refused += 1

    def clear(self) -> int:
        """Drop every block; returns how many."""
        return self._blocks.pop_where(lambda _: True)

    def stats(self) -> dict[str, int]:
        """Counters for /health and logs (see the class docstring)."""
        with self._lock:
            counters = {"hits": self.hits, "misses": self.misses, "hit_tokens": self.hit_tokens,
                        "prefilled_tokens": self.prefilled_tokens, "refused": self.refused}
        return {**counters, "blocks": len(self._blocks), "bytes": self.nbytes, "max_bytes": self.max_bytes,
                "evictions": self._blocks.evictions, "block_size": self.block_size}

    def _refresh(self, hashes: list[str]) -> None:
        for digest in reversed(hashes):
            self._blocks.touch(digest)


@dataclass(frozen=True)
class Prefill:
    """A prefilled prompt.

    cache: a transformers `DynamicCache` (batch 1) whose every layer holds all T positions, keys and values
        [1, kv_heads, T, head_dim] (full layers, also where the model slides a window: its mask applies it).
    logits: [vocab] float32, the next-token logits after the last prompt token.
    reused_tokens: leading tokens whose keys and values came from the prefix cache (0: all computed now).
    """

    cache: Cache
    logits: torch.Tensor
    reused_tokens: int


def prefill(model: Any, row_steering: RowSteering | None, input_ids: torch.Tensor, emphasis: torch.Tensor,
            prefix_cache: PrefixCache | None = None) -> Prefill:
    """Prefill one prompt, steered by `row_steering` (plain when None or nothing is emphasised).

    input_ids: [1, T] long. emphasis: [1, T] bool, the emphasised tokens.
    With `prefix_cache`, the longest cached prefix is reused, only the rest runs (positions n .. T-1, the
    steering masks covering all T tokens), and the prompt's full blocks are stored. Steering that cannot be
    cached (`reuse_refusal`) runs in full without it (counted in `refused`). The results equal an uncached
    prefill's (<= 1e-4 in the logits). The cache returned has full layers (see the module docstring).
    """
    _check_prompt(input_ids, emphasis)
    row = row_steering if row_steering is not None and bool(emphasis.any()) else None
    settings = prefix_settings_key(model, row) if prefix_cache is not None else None
    if prefix_cache is None or settings is None:
        if prefix_cache is not None:
            prefix_cache.note_refused()
        cache, logits = _forward(model, row, input_ids, emphasis, DynamicCache(), 0)
        return Prefill(cache, logits, 0)
    ids, flags = input_ids[0].tolist(), emphasis[0].bool().tolist()
    hit = prefix_cache.lookup(settings, ids, flags)
    start = hit.num_tokens if hit is not None else 0
    cache, logits = _forward(model, row, input_ids, emphasis, hit.cache if hit else DynamicCache(), start)
    prefix_cache.store(settings, ids, flags, cache)
    return Prefill(cache, logits, start)


def _forward(model: Any, row: RowSteering | None, input_ids: torch.Tensor, emphasis: torch.Tensor,
             cache: Cache, start: int) -> tuple[Cache, torch.Tensor]:
    """Run tokens start .. T-1 of input_ids [1, T] on `cache` (holding tokens 0 .. start-1); returns the cache
    (all T tokens) and the last position's logits [vocab] float32."""
    device, total = model.device, input_ids.shape[1]
    state = None if row is None else prepare_state(model, row, emphasis.bool(), torch.ones_like(emphasis.bool()))
    with torch.inference_mode(), steered(model, state):
        out = model(input_ids=input_ids[:, start:].to(device),
                    attention_mask=torch.ones(1, total, dtype=torch.long, device=device),
                    position_ids=torch.arange(start, total, device=device)[None], cache=cache, use_cache=True,
                    logits_to_keep=1)
    return out.cache, out.logits[0, -1].float()


def _full_layers(cache: Cache, num_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Each layer's (keys, values) [1, kv_heads, num_tokens, head_dim], or None when a layer holds fewer."""
    layers = []
    for layer in cache.layers:
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if getattr(layer, "is_sliding", False) or not isinstance(keys, torch.Tensor) \
                or not isinstance(values, torch.Tensor) or keys.dim() != 4 or keys.shape[0] != 1 \
                or keys.shape[2] != num_tokens or values.shape[2] != num_tokens:
            return None
        layers.append((keys, values))
    return layers or None


def _cut_block(layers: list[tuple[torch.Tensor, torch.Tensor]], index: int, block_size: int) -> KVBlock:
    """Block `index` of every layer, copied: per layer (keys, values) [kv_heads, block_size, head_dim]."""
    cut = slice(index * block_size, (index + 1) * block_size)
    return tuple((keys[0, :, cut].clone(), values[0, :, cut].clone()) for keys, values in layers)


def _join_blocks(blocks: list[KVBlock]) -> DynamicCache:
    """A batch-1 cache of full layers holding the blocks in order: keys/values [1, kv_heads, n, head_dim]."""
    per_layer = zip(*blocks, strict=True)
    return DynamicCache([(torch.cat([k for k, _ in layer], dim=1)[None], torch.cat([v for _, v in layer], dim=1)[None])
                         for layer in per_layer])


def _block_bytes(block: KVBlock) -> int:
    return sum(t.numel() * t.element_size() for pair in block for t in pair)


def _check_block_size(block_size: object) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ContextError(f"block_size must be a positive integer (tokens per cached block), got {block_size!r}")
    return block_size


def _check_prompt(input_ids: torch.Tensor, emphasis: torch.Tensor) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1 \
            or input_ids.shape[1] == 0:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ContextError(f"prefill needs input_ids of shape [1, tokens > 0], got {shape}")
    if not isinstance(emphasis, torch.Tensor) or emphasis.shape != input_ids.shape:
        shape = tuple(emphasis.shape) if isinstance(emphasis, torch.Tensor) else type(emphasis).__name__
        raise ContextError(f"emphasis must be a [1, tokens] bool tensor matching input_ids "
                           f"{tuple(input_ids.shape)}, got {shape}")
