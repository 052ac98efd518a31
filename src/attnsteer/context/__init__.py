"""Steer a reused context once and answer many queries on it (LLMSteer), or let the model pick
the span per query (AutoPASTA). Usage and the cache's steering rules: docs/contexts.md.

- `prepare_context(steerer, text, method)` / `Steerer.prepare_context`: a `SteeredContext` holding
  the context's KV cache, prefilled once under its emphasis; `.generate(query)` / `.score(query,
  answer)` run on a copy of it. The bias stays on the context's keys (absolute positions 0..n-1) for
  every later query; the query's own tokens are neither emphasised nor down-weighted.
  `context_method_names()`: the methods ("llmsteer", "spans", "plain").
- `ContextStore`: prepared contexts keyed by (model, context hash, steering hash), LRU in bytes.
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
    "select_tokens": "attnsteer.context.selection",
    "SteeredContext": "attnsteer.context.steered_context",
    **dict.fromkeys(["ContextKey", "ContextStore"], "attnsteer.context.store"),
}
__all__ = ["AutoPastaAnswer", "AutoPastaConfig", "ContextError", "ContextKey", "ContextMethod", "ContextStore",
    "DEFAULT_PREFIXES", "LLMSteerConfig", "SteeredContext", "UnknownContextMethodError", "autopasta_generate",
    "context_method_names", "pick_sentences", "prepare_context", "register_context_method", "select_tokens"]
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
    from attnsteer.context.prepare import ContextMethod, context_method_names, prepare_context, register_context_method
    from attnsteer.context.selection import select_tokens
    from attnsteer.context.steered_context import SteeredContext
    from attnsteer.context.store import ContextKey, ContextStore
