"""The paper's baselines and PASTA as prompt renderings: what text the model reads, what is steered."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from attnsteer.errors import AttnsteerError
from attnsteer.spans import CharSpan
from attnsteer.tasks import Example

PAPER_METHODS = ("zero-shot", "marked-star", "marked-quote", "few-shot", "pasta", "few-shot+pasta")
# The context methods run through attnsteer.context (tasks whose examples mark their context: squad, gsm8k).
CONTEXT_METHODS = ("autopasta", "llmsteer")
METHODS = PAPER_METHODS + CONTEXT_METHODS
ALIASES = {"marked": ("marked-star", "marked-quote"), "all": PAPER_METHODS}
DEMO_SEPARATOR = "\n\n"


class UnknownMethodError(AttnsteerError):
    """A method name that is not one of METHODS (or an alias)."""


@dataclass(frozen=True)
class RenderedPrompt:
    """The text given to the model and, when steering, the spans to emphasise in it."""

    text: str
    emphasis: tuple[CharSpan, ...] | None  # None: run the plain model


def expand_methods(names: Sequence[str]) -> list[str]:
    """'marked' -> both marked variants, 'all' -> the PASTA paper's six; unknown names raise with the allowed."""
    methods: list[str] = []
    for name in names:
        name = name.strip()
        if name in ALIASES:
            methods += [m for m in ALIASES[name] if m not in methods]
        elif name in METHODS:
            methods += [name] if name not in methods else []
        else:
            raise UnknownMethodError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}, marked, all")
    return methods


def uses_steering(method: str) -> bool:
    return method.endswith("pasta") or method == "llmsteer"


def render(method: str, example: Example, demonstrations: Sequence[Example] = ()) -> RenderedPrompt:
    """The prompt for `example` under `method` (demonstrations are used by the few-shot methods only)."""
    if method == "zero-shot":
        return RenderedPrompt(example.prompt, None)
    if method in ("marked-star", "marked-quote"):
        mark = "*" if method == "marked-star" else '"'
        return RenderedPrompt(wrap_spans(example.prompt, example.emphasis, mark), None)
    if method == "pasta":
        return RenderedPrompt(example.prompt, example.emphasis)
    if method in ("few-shot", "few-shot+pasta"):
        prefix = "".join(demo.prompt + demo.answer + DEMO_SEPARATOR for demo in demonstrations)
        shifted = tuple(CharSpan(span.start + len(prefix), span.end + len(prefix)) for span in example.emphasis)
        return RenderedPrompt(prefix + example.prompt, shifted if method == "few-shot+pasta" else None)
    raise UnknownMethodError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")


def wrap_spans(text: str, spans: Sequence[CharSpan], mark: str) -> str:
    """Put `mark` before and after each span (the paper's marked-prompt baselines)."""
    pieces, cursor = [], 0
    for span in sorted(spans):
        pieces += [text[cursor : span.start], mark, text[span.start : span.end], mark]
        cursor = span.end
    return "".join(pieces) + text[cursor:]


def pick_demonstrations(pool: Sequence[Example], k: int, seed: int, kind: str) -> list[Example]:
    """k demonstrations of the same kind from the train split, seeded (the same for every test example)."""
    same_kind = [example for example in pool if example.kind == kind]
    return random.Random(seed).sample(same_kind, min(k, len(same_kind)))
