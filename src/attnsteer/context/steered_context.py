"""`SteeredContext`: a context prefilled once (steered or not) whose KV cache answers many queries.

The context's tokens keep the steering bias for every later query: the bias lives in absolute key
positions 0 .. n-1 (n = context tokens), so a query's and its generated tokens' attention to the
context is biased exactly as during the prefill, while the query's own tokens (positions >= n) are
neither emphasised nor down-weighted. Each query runs on a deep copy of the stored cache
(copy-on-use), so queries never see each other's tokens and the stored cache never grows.

Through a chat template (`frame`), the cached tokens are the template's head + the context and each
query carries the template's tail, so the reply is the assistant's turn (`context.frame`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from attnsteer.context.config import ContextError
from attnsteer.context.frame import ChatFrame
from attnsteer.context.prefix_cache import reuse_refusal
from attnsteer.steering.activation import prepare_state, steered

if TYPE_CHECKING:
    from transformers import Cache

    from attnsteer.steerer import Steerer
    from attnsteer.steering.state import SteeringState


class SteeredContext:
    """A context's KV cache, built once under a query-independent emphasis, reused for queries.

    steerer: supplies model, tokenizer, heads and alpha/mode.
    input_ids: [1, n] the context tokens (with the tokenizer's leading special tokens, or a chat
        template's head).
    emphasis_mask: [1, n] bool, the emphasised context tokens; None for a plain (unsteered) context.
    method: how the emphasis was chosen ("llmsteer", "spans", "plain"), for display.
    frame: the chat template around context and queries (None: plain text, queries appended as they are).
    """

    def __init__(self, steerer: Steerer, input_ids: torch.Tensor, emphasis_mask: torch.Tensor | None,
                 method: str, text: str = "", frame: ChatFrame | None = None) -> None:
        if input_ids.dim() != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] == 0:
            raise ContextError(f"a context needs input_ids of shape [1, tokens>0], got {tuple(input_ids.shape)}")
        if emphasis_mask is not None and emphasis_mask.shape != input_ids.shape:
            raise ContextError(f"emphasis_mask {tuple(emphasis_mask.shape)} must match input_ids "
                               f"{tuple(input_ids.shape)}")
        self.steerer, self.input_ids, self.method, self.text = steerer, input_ids, method, text
        self.frame = frame
        self.emphasis_mask = None if emphasis_mask is None or not bool(emphasis_mask.any()) else emphasis_mask.bool()
        _check_reusable(steerer, self.emphasis_mask is not None)
        self.cache = self._prefill()

    # ----- properties -----------------------------------------------------------------------------
    @property
    def num_tokens(self) -> int:
        """Context tokens held in the cache (special tokens included)."""
        return int(self.input_ids.shape[1])

    @property
    def steered(self) -> bool:
        """True when the context was prefilled under an emphasis (False: a plain context)."""
        return self.emphasis_mask is not None

    @property
    def emphasised_text(self) -> list[str]:
        """The emphasised tokens, decoded one by one (empty for a plain context)."""
        if self.emphasis_mask is None:
            return []
        ids = self.input_ids[0][self.emphasis_mask[0]].tolist()
        return [self.steerer.tokenizer.decode([token]) for token in ids]

    def nbytes(self) -> int:
        """Bytes held by the stored KV cache (keys and values of every layer)."""
        return sum(tensor.numel() * tensor.element_size() for layer in self.cache.layers
                   for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None))
                   if isinstance(tensor, torch.Tensor))

    # ----- queries --------------------------------------------------------------------------------
    def generate(self, query: str, max_new_tokens: int = 32, **generate_kwargs: Any) -> str:
        """Greedy continuation (unless overridden) of context + query; returns the new text only."""
        query_ids = self.query_ids(query)
        ids = torch.cat([self.input_ids, query_ids], dim=1)
        settings = {"max_new_tokens": max_new_tokens, "do_sample": False, "top_p": None, "top_k": None,
                    "pad_token_id": self.steerer.tokenizer.pad_token_id, **generate_kwargs}
        with torch.inference_mode(), self.steering_block():
            output = self.steerer.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                                 cache=self.fresh_cache(), **settings)
        return self.steerer.tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)

    def logits(self, query: str) -> torch.Tensor:
        """[query tokens, vocab] float32: the next-token logits at each query position."""
        query_ids = self.query_ids(query)
        with torch.inference_mode(), self.steering_block():
            out = self.steerer.model(input_ids=query_ids, attention_mask=self._attention(query_ids.shape[1]),
                                     cache=self.fresh_cache(), use_cache=True)
        return out.logits[0].float()

    def score(self, query: str, answer: str) -> float:
        """Sum of log-probabilities (nats) of `answer` after context + query, teacher-forced (through a
        chat template: the answer is the start of the assistant's reply)."""
        query_ids = self.query_ids(query)
        answer_ids = self._text_ids(answer, what="answer")
        ids = torch.cat([query_ids, answer_ids], dim=1)
        with torch.inference_mode(), self.steering_block():
            out = self.steerer.model(input_ids=ids, attention_mask=self._attention(ids.shape[1]),
                                     cache=self.fresh_cache(), use_cache=True,
                                     logits_to_keep=answer_ids.shape[1] + 1)
        log_probs = torch.log_softmax(out.logits[0, :-1].float(), dim=-1)
        return float(log_probs.gather(-1, answer_ids[0][:, None]).sum())

    # ----- internals ------------------------------------------------------------------------------
    @contextmanager
    def steering_block(self) -> Iterator[SteeringState | None]:
        """Steer the model with this context's bias (keys 0..n-1) inside the block; plain when unsteered."""
        if self.emphasis_mask is None:
            yield None
            return
        prompt_mask = torch.ones_like(self.emphasis_mask)
        state = prepare_state(self.steerer.model, self.steerer.row_steering, self.emphasis_mask, prompt_mask)
        with steered(self.steerer.model, state):
            yield state

    def fresh_cache(self) -> Cache:
        """A deep copy of the stored cache, for one query (copy-on-use)."""
        return copy.deepcopy(self.cache)

    def _prefill(self) -> Cache:
        with torch.inference_mode(), self.steering_block():
            out = self.steerer.model(input_ids=self.input_ids, attention_mask=torch.ones_like(self.input_ids),
                                     use_cache=True, logits_to_keep=1)
        return out.cache

    def _attention(self, new_tokens: int) -> torch.Tensor:
        return torch.ones(1, self.num_tokens + new_tokens, dtype=torch.long)

    def query_ids(self, query: str) -> torch.Tensor:
        """[1, q] the query's tokens (and the chat template's tail after them)."""
        if self.frame is None:
            return self._text_ids(query, what="query")
        _check_text(query, "query")
        return torch.tensor([self.frame.encode_query(self.steerer.tokenizer, query)], dtype=torch.long)

    def _text_ids(self, text: str, what: str) -> torch.Tensor:
        _check_text(text, what)
        ids = self.steerer.tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor([ids], dtype=torch.long)

    def __repr__(self) -> str:
        emphasised = int(self.emphasis_mask.sum()) if self.emphasis_mask is not None else 0
        return (f"SteeredContext(method={self.method!r}, tokens={self.num_tokens}, emphasised={emphasised}, "
                f"chat={self.frame is not None}, cache_bytes={self.nbytes()})")


def _check_reusable(steerer: Steerer, steered: bool) -> None:
    """A steered cache is reusable only under a causal method (position i reads tokens <= i only): the
    prefix cache's rule (`prefix_cache.reuse_refusal`)."""
    refusal = reuse_refusal(steerer.row_steering) if steered else None
    if refusal is not None:
        raise ContextError(refusal)


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ContextError(f"the {what} is empty; give some text")
