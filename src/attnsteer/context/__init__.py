"""Steer a reused context once and answer many queries on it (LLMSteer), or let the model pick
the span per query (AutoPASTA). Usage and the cache's steering rules: docs/contexts.md.

- `prepare_context(steerer, text, method)` / `Steerer.prepare_context`: a `SteeredContext` holding
  the context's KV cache, prefilled once under its emphasis; `.generate(query)` / `.score(query,
  answer)` run on a copy of it. The bias stays on the context's keys (absolute positions 0..n-1) for
  every later query; the query's own tokens are neither emphasised nor down-weighted.
  `context_method_names()`: the methods ("llmsteer", "spans", "plain").
- `ContextStore`: prepared contexts keyed by (model, context hash, steering hash), LRU in bytes.
- `PrefixCache` + `prefill(model, row_steering, input_ids, emphasis, prefix_cache)`: steered automatic prefix
  caching, KV blocks hashed over (token ids, emphasis flags, settings) and shared by every prompt that starts
  with them. Both caches store through one `ByteLRU`.
- `autopasta_generate(steerer, context, query)`: AutoPASTA, re-encoding the context per query.
Names load lazily (`attnsteer.lazy`): `attnsteer.context.config` imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnsteer.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["AutoPastaAnswer", "autopasta_generate", "pick_sentences"], "attnsteer.context.autopasta"),
    **dict.fromkeys(["DEFAULT_PREFIXES", "AutoPastaConfig", "ContextError", "LLMSteerConfig",
                     "UnknownContextMethodError"], "attnsteer.context.config"),
    **dict.fromkeys(["ContextMethod", "context_method_names", "prepare_context", "register_context_method"],
                    "attnsteer.context.prepare"),
    "ByteLRU": "attnsteer.context.lru",
    **dict.fromkeys(["CachedPrefix", "Prefill", "PrefixCache", "block_hashes", "prefill", "prefix_settings_key",
                     "reuse_refusal"], "attnsteer.context.prefix_cache"),
    "select_tokens": "attnsteer.context.selection",
    "SteeredContext": "attnsteer.context.steered_context",
    **dict.fromkeys(["ContextKey", "ContextStore"], "attnsteer.context.store"),
}
__all__ = ["AutoPastaAnswer", "AutoPastaConfig", "ByteLRU", "CachedPrefix", "ContextError", "ContextKey",
    "ContextMethod", "ContextStore", "DEFAULT_PREFIXES", "LLMSteerConfig", "Prefill", "PrefixCache", "SteeredContext",
    "UnknownContextMethodError", "autopasta_generate", "block_hashes", "context_method_names", "pick_sentences",
    "prefill", "prefix_settings_key", "prepare_context", "register_context_method", "reuse_refusal", "select_tokens"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from attnsteer.context.autopasta import AutoPastaAnswer, autopasta_generate, pick_sentences
    from attnsteer.context.config import (
        DEFAULT_PREFIXES,
        AutoPastaConfig,
        ContextError,
        LLMSteerConfig,
        UnknownContextMethodError,
    )
    from attnsteer.context.lru import ByteLRU
    from attnsteer.context.prefix_cache import (
        CachedPrefix,
        Prefill,
        PrefixCache,
        block_hashes,
        prefill,
        prefix_settings_key,
        reuse_refusal,
    )
    from attnsteer.context.prepare import ContextMethod, context_method_names, prepare_context, register_context_method
    from attnsteer.context.selection import select_tokens
    from attnsteer.context.steered_context import SteeredContext
    from attnsteer.context.store import ContextKey, ContextStore
