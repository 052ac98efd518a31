"""`ContextStore`: steered contexts kept for reuse, bounded in bytes (least recently used goes first)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from attnsteer.context.config import ContextError
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
    """Thread-safe LRU of `SteeredContext`s whose KV caches together hold at most `max_bytes`.

    A context larger than `max_bytes` is built and returned but not kept (counted in `too_large`).
    `hits` / `misses` count `get_or_build` lookups; `invalidate` drops entries explicitly.
    """

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ContextError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[ContextKey, SteeredContext] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = self.too_large = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by every stored context's KV cache."""
        with self._lock:
            return sum(context.nbytes() for context in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: ContextKey) -> bool:
        return key in self._entries

    def get_or_build(self, key: ContextKey, build: Callable[[], SteeredContext]) -> SteeredContext:
        """The stored context for `key` (a hit), or `build()` stored under it (a miss)."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        context = build()  # outside the lock: a prefill takes seconds
        self.put(key, context)
        return context

    def put(self, key: ContextKey, context: SteeredContext) -> None:
        """Store `context`, evicting least recently used entries until everything fits in `max_bytes`."""
        size = context.nbytes()
        with self._lock:
            if size > self.max_bytes:
                self.too_large += 1
                return
            self._entries.pop(key, None)
            while self._entries and sum(c.nbytes() for c in self._entries.values()) + size > self.max_bytes:
                self._entries.popitem(last=False)
                self.evictions += 1
            self._entries[key] = context

    def invalidate(self, key: ContextKey | None = None, *, model: str | None = None,
                   context_text: str | None = None) -> int:
        """Drop one key, every entry of a model, or every entry of a context text; returns how many.

        With no argument, everything is dropped.
        """
        digest = None if context_text is None else hashlib.sha256(context_text.encode("utf-8")).hexdigest()
        with self._lock:
            doomed = [k for k in self._entries
                      if (key is None or k == key) and (model is None or k.model == model)
                      and (digest is None or k.context == digest)]
            for k in doomed:
                del self._entries[k]
        return len(doomed)

    def stats(self) -> dict[str, int]:
        """Entries, bytes, limit and hit/miss/eviction counters (for /health and logs)."""
        return {"entries": len(self._entries), "bytes": self.nbytes, "max_bytes": self.max_bytes, "hits": self.hits,
                "misses": self.misses, "evictions": self.evictions, "too_large": self.too_large}
