"""lm-eval's `--apply_chat_template` for the `attnsteer` model: each templated context keeps its messages.

lm-eval renders a request's messages (system instruction, few-shot turns, the request's own user turn)
through the model's `apply_chat_template` and hands the model only the resulting string as the request's
context. `ChatContexts` renders them with `attnsteer.chat` and remembers, per rendered string, the
messages it came from. When a request comes back with that string, the emphasis rule is applied to the
request's own turn (the last user message) and the prompt is rebuilt by `chat_prompt`, so the spans
land inside that turn (never in the system prompt, earlier turns or the template's markers), and
`ChatPrompt.encode` tokenises the messages as text and only the template's markers as control tokens.
No torch and no lm-eval here (jinja2 is lm-eval's and transformers' template engine).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import TemplateError

from attnsteer.chat import ChatPrompt, chat_prompt, render_chat
from attnsteer.errors import AttnsteerError
from attnsteer.spans import CharSpan, MarkedText

log = logging.getLogger("lm_eval.attnsteer")
# What `chat_template()` reports (lm-eval logs and hashes it) for a tokenizer without a template of its own.
PLAIN_TEMPLATE = "attnsteer.chat plain template: '{Role}: {content}\\n\\n' per message, then 'Assistant:'"


class ChatContextError(AttnsteerError):
    """A chat-templated request context cannot be steered (not rendered here, or rendered unsupportedly)."""


@dataclass(frozen=True)
class ChatMessages:
    """The messages one templated context was rendered from; `turn`: the index of the last user message."""

    roles: tuple[str, ...]
    contents: tuple[str, ...]
    turn: int

    @property
    def turn_text(self) -> str:
        """The request's own user turn: the text the emphasis rule reads."""
        return self.contents[self.turn]

    def prompt(self, tokenizer: Any, turn_text: str, spans: Sequence[CharSpan]) -> ChatPrompt:
        """The chat rendered again with `turn_text` (the turn, marked or not) as the request's turn and
        `spans` (char spans of `turn_text`) shifted to where the template put it."""
        contents = [MarkedText(content) for content in self.contents]
        contents[self.turn] = MarkedText(turn_text, tuple(spans))
        return chat_prompt(tokenizer, self.roles, contents)


class ChatContexts:
    """Renders lm-eval's chat histories and finds, for a request context, the messages behind it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.rendered: dict[str, ChatMessages] = {}
        self._marker: str | None = None

    @property
    def template(self) -> str:
        """The tokenizer's chat template, else a description of attnsteer's plain one."""
        template = getattr(self.tokenizer, "chat_template", None)
        return template if isinstance(template, str) and template else PLAIN_TEMPLATE

    def render(self, chat_history: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
        """lm-eval's `apply_chat_template`: the prompt text, remembered with its messages.

        A template that rejects the system role is rendered without it, as lm-eval's hf model does.
        """
        if not add_generation_prompt:
            raise ChatContextError("the attnsteer model renders chat templates with the generation prompt only; "
                                   "tasks whose answers start with a prefix (gen_prefix) are not supported")
        roles = [str(message["role"]) for message in chat_history]
        contents = [str(message["content"]) for message in chat_history]
        try:
            text = chat_prompt(self.tokenizer, roles, [MarkedText(content) for content in contents]).marked.text
        except TemplateError as error:  # the template raised, e.g. "System role not supported"
            if "system" not in roles:
                raise
            log.warning("attnsteer: the chat template rejects the system role (%s); rendering without it", error)
            kept = [index for index, role in enumerate(roles) if role != "system"]
            return self.render([chat_history[index] for index in kept])
        users = [index for index, role in enumerate(roles) if role == "user"]
        if not users:
            raise ChatContextError(f"a chat history without a user message (roles {roles}); nothing to steer in")
        self.rendered[text] = ChatMessages(tuple(roles), tuple(contents), users[-1])
        return text

    def messages(self, context: str) -> ChatMessages | None:
        """The messages `context` was rendered from; None for a plain (untemplated) context.

        A context that carries this tokenizer's template markers but was not rendered here (lm-eval's
        `--cache_requests` reuses contexts from an earlier run without asking the model) raises.
        """
        found = self.rendered.get(context)
        if found is None and self._generation_marker() and self._generation_marker() in context:
            raise ChatContextError(
                "a request context was rendered by the chat template outside this run (lm-eval's --cache_requests "
                "reuses contexts without asking the model), so its messages are unknown; run without "
                "--cache_requests or with --cache_requests refresh")
        return found

    def _generation_marker(self) -> str:
        """The template's text between a user message and the assistant's reply (`<|im_end|>\\n<|im_start|>
        assistant\\n`); empty for a template that writes no control tokens (nothing to mistake then)."""
        if self._marker is None:
            sample = render_chat(self.tokenizer, ["user"], ["\ue000"])
            end = sample.offsets[0] + sample.lengths[0]
            self._marker = sample.text[end:] if sample.has_special_tokens else ""
        return self._marker
