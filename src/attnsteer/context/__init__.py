"""Steer a reused context once and answer many queries on it (LLMSteer), or let the model pick
the span per query (AutoPASTA). See DESIGN.md section 6.

- `prepare_context(steerer, text, method)` / `Steerer.prepare_context`: a `SteeredContext` holding
  the context's KV cache, prefilled once under its emphasis; `.generate(query)` / `.score(query,
  answer)` run on a copy of it.
- `ContextStore`: prepared contexts keyed by (model, context hash, steering hash), LRU in bytes.
- `autopasta_generate(steerer, context, query)`: AutoPASTA, re-encoding the context per query.
"""

from attnsteer.context.autopasta import AutoPastaAnswer, autopasta_generate, pick_sentences
from attnsteer.context.config import (
    CONTEXT_METHODS,
    DEFAULT_PREFIXES,
    AutoPastaConfig,
    ContextError,
    LLMSteerConfig,
)
from attnsteer.context.prepare import prepare_context
from attnsteer.context.selection import select_tokens
from attnsteer.context.steered_context import SteeredContext
from attnsteer.context.store import ContextKey, ContextStore

__all__ = [
    "CONTEXT_METHODS", "DEFAULT_PREFIXES", "AutoPastaAnswer", "AutoPastaConfig", "ContextError", "ContextKey",
    "ContextStore", "LLMSteerConfig", "SteeredContext", "autopasta_generate", "pick_sentences", "prepare_context",
    "select_tokens",
]
