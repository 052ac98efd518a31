"""Chat messages with emphasis -> one prompt: the one path the library (`Steerer.chat`), the CLI and the
server's chat endpoint share.

Each message's emphasis (substrings, char spans or `**markup**`) is resolved inside the message; the
chat template is applied; the spans are shifted to where the template put each message; the prompt is
then tokenised with the messages as text and only the template's own markers as control tokens
(`spans.encode_marked`), so a message cannot close its turn.

A tokenizer with a chat template uses it. Base models have none (the embedded Gemma 3 270M is a
base model); they get the plain template below, and generation stops where the model starts a new
turn:

    System: {content}\\n\\n        (for each message, in order; roles User / Assistant likewise)
    User: {content}\\n\\n
    Assistant:
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attnsteer.errors import AttnsteerError, SpanError
from attnsteer.spans import CharSpan, MarkedText, encode_marked, find_substring_spans, merge_spans

__all__ = ["CHAT_MODES", "ROLES", "ChatPrompt", "RenderedChat", "add_substrings", "chat_prompt",
           "chat_with_demonstrations", "encode_prompt", "has_chat_template", "marked_of", "render_chat",
           "render_plain", "resolve_chat"]

ROLES = ("system", "user", "assistant")

CHAT_MODES = ("auto", "on", "off")

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


def resolve_chat(mode: str, tokenizer: Any) -> bool:
    """Whether task prompts go through a chat template: "auto" when the tokenizer has one, "on" always (the
    plain template below for a tokenizer without one), "off" never."""
    if mode not in CHAT_MODES:
        raise AttnsteerError(f"chat mode {mode!r} is not one of {', '.join(CHAT_MODES)}")
    return mode == "on" or (mode == "auto" and has_chat_template(tokenizer))


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer brings its own chat template (else `render_plain` is used)."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_plain(roles: list[str], contents: list[str]) -> RenderedChat:
    """The plain template for tokenizers without one (see the module docstring)."""
    parts, offsets, length = [], [], 0
    for role, content in zip(roles, contents, strict=True):
        head = f"{PLAIN_ROLE_NAMES[role]}: "
        offsets.append(length + len(head))
        part = f"{head}{content}\n\n"
        parts.append(part)
        length += len(part)
    lengths = tuple(len(content) for content in contents)
    return RenderedChat("".join(parts) + "Assistant:", tuple(offsets), lengths, PLAIN_STOPS, False)


def render_chat(tokenizer: Any, roles: list[str], contents: list[str]) -> RenderedChat:
    """The tokenizer's chat template if it has one, else the plain template.

    Each message is placed by rendering the template once more with a private-use placeholder per
    message: a default system prompt or a short message that also occurs in the template's own text
    cannot be mistaken for the message. A template that rewrites contents (e.g. trims them) falls back
    to finding each content in order.
    """
    if not has_chat_template(tokenizer):
        return render_plain(roles, contents)
    text = _apply_template(tokenizer, roles, contents)
    placeholders = [f"\ue000{index}\ue001" for index in range(len(contents))]
    pieces = re.split("(\ue000\\d+\ue001)", _apply_template(tokenizer, roles, placeholders))
    if "".join(contents[placeholders.index(p)] if p in placeholders else p for p in pieces) == text:
        offsets, cursor = [], 0
        for piece in pieces:
            if piece in placeholders:
                offsets.append(cursor)
                piece = contents[placeholders.index(piece)]
            cursor += len(piece)
    else:
        offsets = _find_in_order(text, contents)
    return RenderedChat(text, tuple(offsets), tuple(len(content) for content in contents), (), True)


def _apply_template(tokenizer: Any, roles: list[str], contents: list[str]) -> str:
    messages = [{"role": role, "content": content} for role, content in zip(roles, contents, strict=True)]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _find_in_order(text: str, contents: list[str]) -> list[int]:
    """Where each content starts in `text`, searched in order."""
    offsets, cursor = [], 0
    for index, content in enumerate(contents):
        start = text.find(content, cursor)
        if start < 0:
            raise AttnsteerError(f"the chat template changed the content of message {index}; cannot place its spans")
        offsets.append(start)
        cursor = start + len(content)
    return offsets


@dataclass(frozen=True)
class ChatPrompt:
    """A chat rendered to one prompt: `marked` holds the prompt text and every message's emphasis,
    shifted into it; `rendered` says where the messages are and how the reply stops."""

    marked: MarkedText
    rendered: RenderedChat

    def encode(self, tokenizer: Any) -> tuple[list[int], list[bool]]:
        """Token ids and emphasis flags: messages as text, the template's markers as control tokens."""
        control = self.rendered.control_spans()
        return encode_marked(tokenizer, self.marked, add_special_tokens=not control, control_spans=control)


def marked_of(prompt: MarkedText | ChatPrompt) -> MarkedText:
    """The text the model reads, with its emphasis: a ChatPrompt's rendered prompt, a MarkedText itself."""
    return prompt.marked if isinstance(prompt, ChatPrompt) else prompt


def encode_prompt(tokenizer: Any, prompt: MarkedText | ChatPrompt) -> tuple[list[int], list[bool]]:
    """Token ids and emphasis flags of a prompt that carries its own emphasis (`ChatPrompt.encode` for a
    chat, `spans.encode_marked` for a plain text)."""
    return prompt.encode(tokenizer) if isinstance(prompt, ChatPrompt) else encode_marked(tokenizer, prompt)


def chat_prompt(tokenizer: Any, roles: Sequence[str], contents: Sequence[MarkedText],
                substrings: Sequence[str] = ()) -> ChatPrompt:
    """Apply the chat template to messages whose emphasis is already resolved.

    contents: each message's clean text with its char spans (`spans.resolve_emphasis`).
    substrings: more emphasis, each the first occurrence in the first message containing it.
    """
    bad = [role for role in roles if role not in ROLES]
    if bad:
        raise AttnsteerError(f"message role {bad[0]!r} is not allowed; use one of {', '.join(ROLES)}")
    contents = add_substrings(list(contents), substrings)
    rendered = render_chat(tokenizer, list(roles), [item.text for item in contents])
    spans = [CharSpan(start + span.start, start + span.end)
             for start, item in zip(rendered.offsets, contents, strict=True) for span in item.spans]
    return ChatPrompt(MarkedText(rendered.text, tuple(merge_spans(spans))), rendered)


def chat_with_demonstrations(tokenizer: Any, prompt: MarkedText,
                             demonstrations: Sequence[tuple[str, str]] = ()) -> ChatPrompt:
    """A task prompt as the last user message, each (prompt, answer) demonstration one user / assistant
    exchange before it (answers stripped: a reply starts its own turn). Used by evaluation and profiling."""
    roles = ["user", "assistant"] * len(demonstrations) + ["user"]
    contents = [MarkedText(text) for demo, answer in demonstrations for text in (demo, answer.strip())]
    return chat_prompt(tokenizer, roles, [*contents, prompt])


def add_substrings(contents: list[MarkedText], substrings: Sequence[str]) -> list[MarkedText]:
    """Each substring emphasises its first occurrence in the first message containing it."""
    contents = list(contents)
    for substring in substrings:
        for index, item in enumerate(contents):
            if substring and substring in item.text:
                found = find_substring_spans(item.text, [substring], "first")
                contents[index] = MarkedText(item.text, tuple(merge_spans([*item.spans, *found])))
                break
        else:
            raise SpanError(f"{substring!r} occurs in no message content")
    return contents
