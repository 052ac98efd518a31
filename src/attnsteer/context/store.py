"""`ContextStore`: steered contexts kept for reuse, bounded in bytes (least recently used goes first), stored
through the `ByteLRU` the prefix cache uses too."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from attnsteer.context.lru import ByteLRU
from attnsteer.context.steered_context import SteeredContext


@dataclass(frozen=True)
class ContextKey:
    """What makes two prepared contexts interchangeable."""

    model: str  # model identity (attnsteer.model_info.model_identity)
    context: str  # sha256 of the context text
    steering: str  # sha256 of the method, its settings, heads, alpha and mode

    @classmethod
    def build(cls, model: str, text: str, steering: str) -> ContextKey:
        """The key of `text` (hashed) for a model identity and a steering-setting hash."""
        return cls(model, hashlib.sha256(text.encode("utf-8")).hexdigest(), steering)


class ContextStore:
    """Thread-safe LRU of `SteeredContext`s whose KV caches together hold at most `max_bytes` (a `ByteLRU`).

    A context larger than `max_bytes` is built and returned but not kept (counted in `too_large`).
    `hits` / `misses` count `get_or_build` lookups; `invalidate` drops entries explicitly.
    """

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        self._lru: ByteLRU[ContextKey, SteeredContext] = ByteLRU(max_bytes, SteeredContext.nbytes)

    @property
    def max_bytes(self) -> int:
        """The byte budget."""
        return self._lru.max_bytes

    @property
    def hits(self) -> int:
        """`get_or_build` calls answered from the store."""
        return self._lru.hits

    @property
    def misses(self) -> int:
        """`get_or_build` calls that built a context."""
        return self._lru.misses

    @property
    def evictions(self) -> int:
        """Contexts dropped to make room."""
        return self._lru.evictions

    @property
    def too_large(self) -> int:
        """Contexts larger than `max_bytes`, built but not kept."""
        return self._lru.too_large

    @property
    def nbytes(self) -> int:
        """Bytes held by every stored context's KV cache."""
        return self._lru.nbytes

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: ContextKey) -> bool:
        return key in self._lru

    def get_or_build(self, key: ContextKey, build: Callable[[], SteeredContext]) -> SteeredContext:
        """The stored context for `key` (a hit), or `build()` stored under it (a miss)."""
        found = self._lru.get(key)
        if found is not None:
            return found
        context = build()  # outside any lock: a prefill takes seconds
        self.put(key, context)
        return context

    def put(self, key: ContextKey, context: SteeredContext) -> None:
        """Store `context`, evicting least recently used entries until everything fits in `max_bytes`."""
        self._lru.put(key, context)

    def invalidate(self, key: ContextKey | None = None, *, model: str | None = None,
                   context_text: str | None = None) -> int:
        """Drop one key, every entry of a model, or every entry of a context text; returns how many.

        With no argument, everything is dropped.
        """
        digest = None if context_text is None else hashlib.sha256(context_text.encode("utf-8")).hexdigest()
        return self._lru.pop_where(lambda k: (key is None or k == key) and (model is None or k.model == model)
                                   and (digest is None or k.context == digest))

    def stats(self) -> dict[str, int]:
        """Entries, bytes, limit and hit/miss/eviction counters (for /health and logs)."""
        return self._lru.stats()
