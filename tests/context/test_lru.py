"""ByteLRU: the one byte-bounded LRU under ContextStore and PrefixCache (order, eviction, counters, threads)."""

from __future__ import annotations

import threading

import pytest

from attnsteer.context import ByteLRU, ContextError


def lru(max_bytes: int = 10) -> ByteLRU[str, bytes]:
    return ByteLRU(max_bytes, len)  # a value's size: its length in bytes


def test_get_refreshes_and_counts_while_peek_and_touch_do_not_count():
    cache = lru()
    assert cache.put("a", b"xx") and cache.put("b", b"yyy")
    assert cache.keys() == ["a", "b"]
    assert cache.get("a") == b"xx" and cache.keys() == ["b", "a"]
    assert cache.get("zz") is None
    assert cache.peek("b") == b"yyy" and cache.keys() == ["b", "a"]  # peek leaves the order alone
    assert cache.touch("b") and not cache.touch("zz") and cache.keys() == ["a", "b"]
    assert (cache.hits, cache.misses) == (1, 1)
    assert len(cache) == 2 and "a" in cache and "zz" not in cache and cache.nbytes == 5


def test_put_evicts_least_recently_used_until_the_value_fits():
    cache = lru(10)
    for key in "abc":
        cache.put(key, b"123")  # 9 bytes
    cache.get("a")  # order: b, c, a
    cache.put("d", b"12345")  # 14 > 10: b then c go
    assert cache.keys() == ["a", "d"] and cache.nbytes == 8 and cache.evictions == 2
    cache.put("a", b"1234567")  # replacing a key frees its old size first: 5 + 7 > 10 evicts d
    assert cache.keys() == ["a"] and cache.nbytes == 7 and cache.evictions == 3


def test_a_value_larger_than_the_budget_is_not_kept_and_nothing_is_evicted_for_it():
    cache = lru(4)
    cache.put("a", b"12")
    assert not cache.put("big", b"12345")
    assert cache.keys() == ["a"] and cache.too_large == 1 and cache.evictions == 0


def test_pop_pop_where_and_stats():
    cache = lru(100)
    for key in ("m1:x", "m1:y", "m2:x"):
        cache.put(key, key.encode())
    assert cache.pop("m1:x") == b"m1:x" and cache.pop("m1:x") is None
    assert cache.pop_where(lambda key: key.startswith("m2")) == 1
    assert cache.stats() == {"entries": 1, "bytes": 4, "max_bytes": 100, "hits": 0, "misses": 0, "evictions": 0,
                             "too_large": 0}


def test_the_size_is_measured_once_when_put():
    calls = []
    cache: ByteLRU[str, list[int]] = ByteLRU(100, lambda value: calls.append(1) or len(value))
    value = [1, 2]
    cache.put("a", value)
    value.append(3)  # a stored value that grows is not re-measured: the budget counts what was put
    cache.get("a")
    assert cache.nbytes == 2 and len(calls) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_max_bytes_must_be_a_positive_integer(bad):
    with pytest.raises(ContextError, match=f"max_bytes must be a positive integer .*got {bad!r}"):
        ByteLRU(bad, len)


def test_threads_keep_the_byte_count_consistent():
    cache = lru(50)

    def work(worker: int) -> None:
        for step in range(300):
            key = f"{worker}:{step % 7}"
            cache.put(key, b"x" * (1 + step % 5))
            cache.get(f"{(worker + 1) % 4}:{step % 7}")
            if step % 11 == 0:
                cache.pop(key)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.nbytes == sum(len(cache.peek(key)) for key in cache.keys()) <= 50
    assert cache.hits + cache.misses == 4 * 300
