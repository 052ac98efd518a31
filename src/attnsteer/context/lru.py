"""`ByteLRU`: one thread-safe least-recently-used map bounded in bytes, shared by the context store and the
prefix cache (what it holds and how big each value is are the caller's: a size function gives the bytes).

A value's size is taken once, when it is put (stored values must not grow). Putting evicts the least recently
used entries until the new one fits; a value larger than the whole budget is not kept (`too_large`).
No torch import: the size function does the measuring.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from attnsteer.context.config import ContextError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def check_max_bytes(max_bytes: object) -> int:
    """`max_bytes` when it is a positive integer, else ContextError naming the value."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ContextError(f"max_bytes must be a positive integer (the byte budget), got {max_bytes!r}")
    return max_bytes


class ByteLRU(Generic[K, V]):
    """A thread-safe LRU of values holding together at most `max_bytes` (as measured by `size(value)`).

    Counters: `hits` / `misses` (of `get`), `evictions` (entries dropped to make room), `too_large`
    (values larger than `max_bytes`, not kept).
    """

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_bytes = check_max_bytes(max_bytes)
        self._size = size
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()  # oldest first: (value, bytes)
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = self.too_large = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by every stored value (their sizes when they were put)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[K]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get(self, key: K) -> V | None:
        """The value of `key`, now the most recently used (a hit), or None (a miss)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def peek(self, key: K) -> V | None:
        """The value of `key` or None, leaving the order and the counters as they are."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry[0]

    def touch(self, key: K) -> bool:
        """Make `key` the most recently used; False when it is not stored."""
        with self._lock:
            if key not in self._entries:
                return False
            self._entries.move_to_end(key)
            return True

    def put(self, key: K, value: V) -> bool:
        """Store `value` as the most recently used, evicting the least recently used until it fits.

        Returns False (and keeps nothing, counted in `too_large`) when the value alone exceeds `max_bytes`.
        """
        size = self._size(value)
        with self._lock:
            if size > self.max_bytes:
                self.too_large += 1
                return False
            self._pop(key)
            while self._entries and self._nbytes + size > self.max_bytes:
                self._pop(next(iter(self._entries)))
                self.evictions += 1
            self._entries[key] = (value, size)
            self._nbytes += size
            return True

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value, or None when it was not stored (not counted as an eviction)."""
        with self._lock:
            return self._pop(key)

    def pop_where(self, doomed: Callable[[K], bool]) -> int:
        """Remove every entry whose key satisfies `doomed(key)`; returns how many."""
        with self._lock:
            keys = [key for key in self._entries if doomed(key)]
            for key in keys:
                self._pop(key)
            return len(keys)

    def stats(self) -> dict[str, int]:
        """Entries, bytes, limit and the hit/miss/eviction/too-large counters."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._nbytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses, "evictions": self.evictions, "too_large": self.too_large}

    def _pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._nbytes -= entry[1]
        return entry[0]
