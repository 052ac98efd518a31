"""ContextStore: keyed reuse, LRU eviction by bytes, hit/miss counters, invalidation."""

from __future__ import annotations

import pytest

from attnsteer.context import ContextError, ContextKey, ContextStore, prepare_context
from tests.context.conftest import CONTEXT

TEXTS = [CONTEXT, CONTEXT + " It rains.", CONTEXT + " It snows a lot."]


def test_hits_reuse_the_same_object_and_steering_settings_are_part_of_the_key(tiny_steerer):
    store = ContextStore()
    first = prepare_context(tiny_steerer, CONTEXT, "llmsteer", store=store)
    assert prepare_context(tiny_steerer, CONTEXT, "llmsteer", store=store) is first
    assert (store.hits, store.misses) == (1, 1)
    other_alpha = prepare_context(tiny_steerer.with_options(alpha=0.5), CONTEXT, "llmsteer", store=store)
    plain = prepare_context(tiny_steerer, CONTEXT, "plain", store=store)
    spans = prepare_context(tiny_steerer, CONTEXT, "spans", emphasize=["Paris"], store=store)
    assert len({id(first), id(other_alpha), id(plain), id(spans)}) == 4
    assert (store.hits, store.misses, len(store)) == (1, 4, 4)


def test_evicts_least_recently_used_by_bytes(tiny_steerer):
    contexts = [prepare_context(tiny_steerer, text, "plain") for text in TEXTS]
    sizes = [context.nbytes() for context in contexts]
    assert all(size > 0 for size in sizes)
    store = ContextStore(max_bytes=sizes[0] + sizes[1] + sizes[2] - 1)  # the three do not fit together
    keys = [ContextKey.build("m", text, "plain") for text in TEXTS]
    store.put(keys[0], contexts[0])
    store.put(keys[1], contexts[1])
    assert store.get_or_build(keys[0], lambda: pytest.fail("a hit must not build")) is contexts[0]  # 0 now newest
    store.put(keys[2], contexts[2])
    assert keys[1] not in store and keys[0] in store and keys[2] in store
    assert store.evictions == 1 and store.nbytes == sizes[0] + sizes[2] <= store.max_bytes
    tiny = ContextStore(max_bytes=sizes[0] - 1)
    assert tiny.get_or_build(keys[0], lambda: contexts[0]) is contexts[0]
    assert len(tiny) == 0 and tiny.too_large == 1 and tiny.misses == 1


def test_invalidation(tiny_steerer):
    store = ContextStore()
    for text in TEXTS:
        store.put(ContextKey.build("model-a", text, "plain"), prepare_context(tiny_steerer, text, "plain"))
    store.put(ContextKey.build("model-b", TEXTS[0], "plain"), prepare_context(tiny_steerer, TEXTS[0], "plain"))
    assert store.invalidate(context_text=TEXTS[0]) == 2
    assert store.invalidate(ContextKey.build("model-a", TEXTS[1], "plain")) == 1
    assert store.invalidate(model="model-a") == 1 and len(store) == 0
    with pytest.raises(ContextError, match="max_bytes must be a positive integer"):
        ContextStore(max_bytes=0)
