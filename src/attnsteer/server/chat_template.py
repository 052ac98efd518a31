"""Chat messages -> one prompt, remembering where each message's content starts.

A tokenizer with a chat template uses it. Base models have none (the embedded Gemma 3 270M is a
base model); they get the plain template below, and generation stops where the model starts a new
turn:

    System: {content}\\n\\n        (for each message, in order; roles User / Assistant likewise)
    User: {content}\\n\\n
    Assistant:
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from attnsteer.errors import AttnsteerError
from attnsteer.spans import CharSpan

PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_STOPS = ("\nUser:", "\nSystem:", "\nAssistant:")


@dataclass(frozen=True)
class RenderedChat:
    """text: the prompt; offsets[i] / lengths[i]: where message i's content starts in it and how long it is;
    stop: strings ending the reply; has_special_tokens: the template writes its own control tokens."""

    text: str
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    stop: tuple[str, ...]
    has_special_tokens: bool

    def control_spans(self) -> tuple[CharSpan, ...]:
        """The template's own text (everything but the message contents), where control tokens count as such;
        empty for a template that writes none (then the whole prompt is tokenised as text)."""
        if not self.has_special_tokens:
            return ()
        spans, cursor = [], 0
        for start, length in zip(self.offsets, self.lengths, strict=True):
            if start > cursor:
                spans.append(CharSpan(cursor, start))
            cursor = start + length
        if cursor < len(self.text):
            spans.append(CharSpan(cursor, len(self.text)))
        return tuple(spans)


def render_plain(roles: list[str], contents: list[str]) -> RenderedChat:
    parts, offsets, length = [], [], 0
    for role, content in zip(roles, contents, strict=True):
        head = f"{PLAIN_ROLE_NAMES[role]}: "
        offsets.append(length + len(head))
        part = f"{head}{content}\n\n"
        parts.append(part)
        length += len(part)
    lengths = tuple(len(content) for content in contents)
    return RenderedChat("".join(parts) + "Assistant:", tuple(offsets), lengths, PLAIN_STOPS, False)


def render_chat(tokenizer: PreTrainedTokenizerBase, roles: list[str], contents: list[str]) -> RenderedChat:
    """The tokenizer's chat template if it has one (contents located in order), else the plain template."""
    if not getattr(tokenizer, "chat_template", None):
        return render_plain(roles, contents)
    messages = [{"role": role, "content": content} for role, content in zip(roles, contents, strict=True)]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    offsets, cursor = [], 0
    for index, content in enumerate(contents):
        start = text.find(content, cursor)
        if start < 0:
            raise AttnsteerError(f"the chat template changed the content of message {index}; cannot place its spans")
        offsets.append(start)
        cursor = start + len(content)
    return RenderedChat(text, tuple(offsets), tuple(len(content) for content in contents), (), True)
