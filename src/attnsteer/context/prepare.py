"""`prepare_context`: tokenise a context, choose its emphasis (LLMSteer, given spans, or none),
prefill it once, and keep it in a `ContextStore` when one is given."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from attnsteer.context.config import ContextError, LLMSteerConfig, check_method, config_hash
from attnsteer.context.selection import llmsteer_emphasis
from attnsteer.context.steered_context import SteeredContext
from attnsteer.context.store import ContextKey, ContextStore
from attnsteer.models.identity import model_identity

if TYPE_CHECKING:
    from attnsteer.steerer import Steerer

logger = logging.getLogger(__name__)


def prepare_context(
    steerer: Steerer,
    text: str,
    method: str = "llmsteer",
    *,
    emphasize: Any = None,
    llmsteer: LLMSteerConfig | None = None,
    store: ContextStore | None = None,
) -> SteeredContext:
    """A `SteeredContext` for `text`.

    method: "llmsteer" (the model picks query-independent tokens, `llmsteer` settings), "spans"
        (`emphasize` as in `Steerer.generate`: substrings / (start, end) offsets, or `**markup**` in
        the text when None) or "plain" (no steering; prefix-cache reuse only).
    store: when given, an equal (model, text, steering setting) context is reused from it.
    """
    check_method(method)
    if not isinstance(text, str) or not text.strip():
        raise ContextError("the context is empty; give the text to read")
    if method != "spans" and emphasize is not None:
        raise ContextError(f"emphasize goes with method='spans', not {method!r}")
    llmsteer = llmsteer or LLMSteerConfig()
    if store is None:
        return _build(steerer, text, method, emphasize, llmsteer)
    key = ContextKey.build(model_identity(steerer.model), text, steering_hash(steerer, method, emphasize, llmsteer))
    return store.get_or_build(key, lambda: _build(steerer, text, method, emphasize, llmsteer))


def steering_hash(steerer: Steerer, method: str, emphasize: Any, llmsteer: LLMSteerConfig) -> str:
    """sha256 of everything besides the text that changes the prepared cache."""
    if method == "plain":
        return config_hash({"method": "plain"})
    setting: dict[str, Any] = {"method": method, "heads": str(steerer.heads), **steerer.config.to_dict()}
    setting["selection"] = config_hash(llmsteer) if method == "llmsteer" else repr(emphasize)
    return config_hash(setting)


def _build(steerer: Steerer, text: str, method: str, emphasize: Any, llmsteer: LLMSteerConfig) -> SteeredContext:
    if method == "spans":
        encoded = steerer.encode(text, emphasize)
        ids, emphasis = encoded.encodings["input_ids"], encoded.emphasis_mask
        if not bool(emphasis.any()):
            raise ContextError("method 'spans' needs something emphasised: pass emphasize=[...] or **markup**")
        return SteeredContext(steerer, ids, emphasis, method, encoded.marked[0].text)
    encoded = steerer.tokenizer(text, return_special_tokens_mask=True)
    ids = torch.tensor([encoded["input_ids"]], dtype=torch.long)
    if method == "plain":
        return SteeredContext(steerer, ids, None, method, text)
    num_special = _leading_specials(encoded["special_tokens_mask"])
    if num_special >= ids.shape[1]:
        raise ContextError("the context has no tokens besides special tokens")
    emphasis = llmsteer_emphasis(steerer.model, steerer.tokenizer, ids, num_special, llmsteer)
    if not bool(emphasis.any()):
        logger.warning("LLMSteer: the two readings share no top-%d token; the context runs unsteered",
                       llmsteer.k_for(ids.shape[1] - num_special))
    return SteeredContext(steerer, ids, emphasis, method, text)


def _leading_specials(special_mask: list[int]) -> int:
    count = 0
    while count < len(special_mask) and special_mask[count]:
        count += 1
    return count
