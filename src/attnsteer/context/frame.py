"""`ChatFrame`: what a chat template writes around a context and its queries.

Through a chat template the model reads  head + context + query + tail + reply, where the context and
the query together are one user message:

    head  the template's text before the user message (BOS, a default system prompt, role markers)
    tail  the text after it, closing the user turn and opening the assistant's

A `SteeredContext` prefills head + context once and gives every query its tail, so a query answered on
the cache reads exactly the tokens `attnsteer eval --chat on` reads for the whole prompt as one user
message. Head and tail are tokenised as the template's control text; context and query as text
(`spans.encode_marked`), so a context cannot close its turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnsteer.chat import has_chat_template, render_chat
from attnsteer.context.config import ContextError
from attnsteer.spans import CharSpan, MarkedText, encode_marked

# Stands in for the user message while the template is rendered (a private-use character, so it cannot
# be confused with the template's own text).
_PLACEHOLDER = "\ue0ff"


@dataclass(frozen=True)
class ChatFrame:
    """head / tail: the chat template's text before and after the one user message (see the module)."""

    head: str
    tail: str

    @classmethod
    def of(cls, tokenizer: Any) -> ChatFrame:
        """The frame of the tokenizer's chat template; a tokenizer without one is refused."""
        if not has_chat_template(tokenizer):
            raise ContextError("this tokenizer has no chat template, so a context cannot be read through one; "
                               "use chat=False (--chat off or auto)")
        rendered = render_chat(tokenizer, ["user"], [_PLACEHOLDER])
        start = rendered.offsets[0]
        return cls(rendered.text[:start], rendered.text[start + len(_PLACEHOLDER):])

    def encode_context(self, tokenizer: Any, context: MarkedText) -> tuple[list[int], list[bool], int]:
        """(ids, emphasis flags, head tokens) of head + context; the context's spans keep their emphasis."""
        shift = len(self.head)
        marked = MarkedText(self.head + context.text,
                            tuple(CharSpan(span.start + shift, span.end + shift) for span in context.spans))
        ids, flags = encode_marked(tokenizer, marked, add_special_tokens=False,
                                   control_spans=(CharSpan(0, shift),) if shift else ())
        head_tokens = len(tokenizer(self.head, add_special_tokens=False)["input_ids"]) if shift else 0
        return ids, flags, head_tokens

    def encode_query(self, tokenizer: Any, query: str) -> list[int]:
        """Token ids of query + tail (the query as text, the tail as the template's control text)."""
        end = len(query) + len(self.tail)
        ids, _ = encode_marked(tokenizer, MarkedText(query + self.tail), add_special_tokens=False,
                               control_spans=(CharSpan(len(query), end),) if self.tail else ())
        return ids
