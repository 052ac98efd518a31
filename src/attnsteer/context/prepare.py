"""`prepare_context`: tokenise a context, choose its emphasis (LLMSteer, given spans, or none),
prefill it once, and keep it in a `ContextStore` when one is given.

The context methods ("llmsteer", "spans", "plain") are `ContextMethod`s, registered once each at the
bottom of this module with the function that builds their emphasis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from attnsteer.context.config import ContextError, LLMSteerConfig, UnknownContextMethodError, config_hash
from attnsteer.context.frame import ChatFrame
from attnsteer.context.selection import llmsteer_emphasis
from attnsteer.context.steered_context import SteeredContext
from attnsteer.context.store import ContextKey, ContextStore
from attnsteer.model_info import model_identity
from attnsteer.registry import Registry
from attnsteer.spans import MarkedText, encode_marked

if TYPE_CHECKING:
    from attnsteer.steerer import Steerer

logger = logging.getLogger(__name__)


# (input_ids [1, n], emphasis_mask [1, n] bool or None, the context text as the model reads it)
Emphasised = tuple[torch.Tensor, torch.Tensor | None, str]


@dataclass(frozen=True)
class ContextMethod:
    """One way to choose a context's emphasis.

    name: the `method` argument of `prepare_context`.
    emphasis: (steerer, text, emphasize, llmsteer settings, chat frame or None) -> `Emphasised`.
    takes_spans: the caller's `emphasize` (substrings, offsets or markup) chooses the emphasis.
    steers: False for a plain context, whose cache does not depend on heads or alpha.
    """

    name: str
    emphasis: Callable[[Steerer, str, Any, LLMSteerConfig, ChatFrame | None], Emphasised]
    takes_spans: bool = False
    steers: bool = True


_CONTEXT_METHODS: Registry[ContextMethod] = Registry("context method", UnknownContextMethodError)


def register_context_method(method: ContextMethod) -> ContextMethod:
    """Make `method` available to `prepare_context` by its name (a taken name is a ValueError)."""
    return _CONTEXT_METHODS.register(method.name, method)


def get_context_method(name: str) -> ContextMethod:
    """The context method registered as `name`; an unknown name raises with the allowed names."""
    return _CONTEXT_METHODS.get(name)


def context_method_names() -> list[str]:
    """The context methods `prepare_context` accepts, in registration order."""
    return _CONTEXT_METHODS.names()


def prepare_context(
    steerer: Steerer,
    text: str,
    method: str = "llmsteer",
    *,
    emphasize: Any = None,
    llmsteer: LLMSteerConfig | None = None,
    store: ContextStore | None = None,
    chat: bool = False,
) -> SteeredContext:
    """A `SteeredContext` for `text`.

    method: "llmsteer" (the model picks query-independent tokens, `llmsteer` settings), "spans"
        (`emphasize` as in `Steerer.generate`: substrings / (start, end) offsets, or `**markup**` in
        the text when None) or "plain" (no steering; prefix-cache reuse only).
    store: when given, an equal (model, text, steering setting) context is reused from it.
    chat: read the context as the start of a user message through the tokenizer's chat template, each
        query as its rest (`context.frame.ChatFrame`); False: plain text.
    """
    spec = get_context_method(method)
    if not isinstance(text, str) or not text.strip():
        raise ContextError("the context is empty; give the text to read")
    if emphasize is not None and not spec.takes_spans:
        takers = " or ".join(f"method={name!r}" for name in context_method_names()
                             if get_context_method(name).takes_spans)
        raise ContextError(f"emphasize goes with {takers}, not {method!r}")
    llmsteer = llmsteer or LLMSteerConfig()
    frame = ChatFrame.of(steerer.tokenizer) if chat else None
    if store is None:
        return _build(steerer, text, spec, emphasize, llmsteer, frame)
    setting = steering_hash(steerer, method, emphasize, llmsteer, frame)
    key = ContextKey.build(model_identity(steerer.model), text, setting)
    return store.get_or_build(key, lambda: _build(steerer, text, spec, emphasize, llmsteer, frame))


def steering_hash(steerer: Steerer, method: str, emphasize: Any, llmsteer: LLMSteerConfig,
                  frame: ChatFrame | None = None) -> str:
    """sha256 of everything besides the text that changes the prepared cache."""
    spec = get_context_method(method)
    setting: dict[str, Any] = {"method": method, "frame": None if frame is None else [frame.head, frame.tail]}
    if not spec.steers:
        return config_hash(setting)
    setting["steering"] = steerer.method.to_dict()
    setting["selection"] = repr(emphasize) if spec.takes_spans else config_hash(llmsteer)
    return config_hash(setting)


def _build(steerer: Steerer, text: str, spec: ContextMethod, emphasize: Any, llmsteer: LLMSteerConfig,
           frame: ChatFrame | None) -> SteeredContext:
    ids, emphasis, read = spec.emphasis(steerer, text, emphasize, llmsteer, frame)
    return SteeredContext(steerer, ids, emphasis, spec.name, read, frame)


def _spans_emphasis(steerer: Steerer, text: str, emphasize: Any, llmsteer: LLMSteerConfig,
                    frame: ChatFrame | None) -> Emphasised:
    """The caller's spans (or the text's markup, which is removed)."""
    marked = steerer.resolve(text, emphasize)
    ids, emphasis, _ = _encode(steerer, marked, frame)
    if not bool(emphasis.any()):
        raise ContextError("method 'spans' needs something emphasised: pass emphasize=[...] or **markup**")
    return ids, emphasis, marked.text


def _plain_emphasis(steerer: Steerer, text: str, emphasize: Any, llmsteer: LLMSteerConfig,
                    frame: ChatFrame | None) -> Emphasised:
    """No emphasis: the context only runs once for many queries."""
    ids, _, _ = _encode(steerer, MarkedText(text), frame)
    return ids, None, text


def _llmsteer_emphasis(steerer: Steerer, text: str, emphasize: Any, llmsteer: LLMSteerConfig,
                       frame: ChatFrame | None) -> Emphasised:
    """The tokens both of LLMSteer's readings attend to most (see `llmsteer_emphasis`)."""
    ids, _, lead = _encode(steerer, MarkedText(text), frame)
    if lead >= ids.shape[1]:
        raise ContextError("the context has no tokens besides special tokens")
    emphasis = llmsteer_emphasis(steerer.model, steerer.tokenizer, ids, lead, llmsteer)
    if not bool(emphasis.any()):
        logger.warning("LLMSteer: the two readings share no top-%d token; the context runs unsteered",
                       llmsteer.k_for(ids.shape[1] - lead))
    return ids, emphasis, text


def _encode(steerer: Steerer, context: MarkedText, frame: ChatFrame | None,
            ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """input_ids [1, n], emphasis flags [1, n] bool, and how many leading tokens are not the context's:
    the tokenizer's special tokens (BOS) for plain text, the chat template's head through a frame."""
    if frame is not None:
        ids, flags, lead = frame.encode_context(steerer.tokenizer, context)
    else:
        ids, flags = encode_marked(steerer.tokenizer, context)
        special = set(steerer.tokenizer.all_special_ids)
        lead = next((index for index, token in enumerate(ids) if token not in special), len(ids))
    return torch.tensor([ids], dtype=torch.long), torch.tensor([flags], dtype=torch.bool), lead


register_context_method(ContextMethod("llmsteer", _llmsteer_emphasis))
register_context_method(ContextMethod("spans", _spans_emphasis, takes_spans=True))
register_context_method(ContextMethod("plain", _plain_emphasis, steers=False))
