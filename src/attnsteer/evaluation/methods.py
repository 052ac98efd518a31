"""The evaluation methods: the paper's baselines and PASTA as prompt renderings (what text the model
reads, what is steered), the profiling-free steering methods (InstABoost, Spotlight) and Selective Prompt
Anchoring on PASTA's prompts, and the context methods that run through `attnsteer.context`.

Each method is one `EvalMethod`, registered once at the bottom of this module; `parameters` says which
`evaluate` parameters its results depend on (what a sweep reruns).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from attnsteer.chat import ChatPrompt, chat_with_demonstrations
from attnsteer.errors import AttnsteerError
from attnsteer.registry import Registry
from attnsteer.spans import CharSpan, MarkedText
from attnsteer.steering.methods import method_parameters
from attnsteer.tasks import Example

DEMO_SEPARATOR = "\n\n"


class UnknownMethodError(AttnsteerError):
    """An evaluation method name that is not registered (nor an alias)."""


@dataclass(frozen=True)
class RenderedPrompt:
    """What a method gives the model: the example's prompt as the method writes it, the demonstrations
    shown before it, and the spans of `prompt` to steer.

    The same rendering is laid out as one text (`plain`, a base model's few-shot prompt) or as chat
    turns (`chat`: each demonstration a user / assistant exchange, the prompt the last user message).
    """

    prompt: str
    emphasis: tuple[CharSpan, ...] | None  # None: run the plain model
    demonstrations: tuple[tuple[str, str], ...] = ()  # (prompt, answer) pairs

    @property
    def steers(self) -> bool:
        return self.emphasis is not None

    def plain(self) -> MarkedText:
        """Each demonstration (prompt + answer + a blank line) then the prompt, the spans shifted along."""
        prefix = "".join(demo + answer + DEMO_SEPARATOR for demo, answer in self.demonstrations)
        spans = tuple(CharSpan(span.start + len(prefix), span.end + len(prefix)) for span in self.emphasis or ())
        return MarkedText(prefix + self.prompt, spans)

    def chat(self, tokenizer: Any) -> ChatPrompt:
        """Through the tokenizer's chat template (`attnsteer.chat.chat_with_demonstrations`)."""
        return chat_with_demonstrations(tokenizer, MarkedText(self.prompt, self.emphasis or ()), self.demonstrations)

    def for_model(self, tokenizer: Any, chat: bool) -> MarkedText | ChatPrompt:
        """`chat(tokenizer)` when `chat`, else `plain()`: what the Steerer encodes."""
        return self.chat(tokenizer) if chat else self.plain()


def continuation(text: str, chat: bool) -> str:
    """A scored answer as the model writes it: under a chat template the reply starts its own turn, so
    the leading space a base model's continuation carries (" Paris") is dropped."""
    return text.lstrip() if chat else text


Render = Callable[[Example, Sequence[Example]], RenderedPrompt]


@dataclass(frozen=True)
class EvalMethod:
    """One evaluation method.

    name: its name on the command line and in results.
    render: (example, demonstrations) -> the prompt the model reads; None for the methods that read
        a context (they run through `attnsteer.context.evaluation`).
    steers: whether the method acts on the emphasis (steers attention, or anchors the prompt).
    reads_context: runs through `attnsteer.context` on tasks whose examples mark their context
        (squad, gsm8k): autopasta and llmsteer.
    demonstrations: `render` uses demonstrations from the task's train split (the few-shot methods).
    steering: the steering method (`attnsteer.steering.methods`) its runs steer with; None: the Steerer's own
        (the context methods: PASTA unless the caller's Steerer says otherwise).
    anchoring: runs through Selective Prompt Anchoring (the `anchoring` package, `evaluation.spa`) instead.
    """

    name: str
    render: Render | None
    steers: bool
    reads_context: bool = False
    demonstrations: bool = False
    steering: str | None = None
    anchoring: bool = False

    def __post_init__(self) -> None:
        if (self.render is None) != self.reads_context:
            raise ValueError(f"evaluation method {self.name!r}: give a render function exactly when it does not "
                             f"read a context (render={self.render!r}, reads_context={self.reads_context!r})")
        if (self.steering is not None or self.anchoring) and not self.steers:
            raise ValueError(f"evaluation method {self.name!r}: a steering method or anchoring goes with steers=True")

    @property
    def parameters(self) -> tuple[str, ...]:
        """The `evaluate` parameters its results depend on: a sweep over one reruns the methods that have it
        (spa: spa_strength; a steered method: its steering method's parameters, PASTA's for the context ones)."""
        if self.anchoring:
            return ("spa_strength",)
        return method_parameters(self.steering or "pasta") if self.steers else ()


_EVALUATION_METHODS: Registry[EvalMethod] = Registry("evaluation method", UnknownMethodError)


def register_method(method: EvalMethod) -> EvalMethod:
    """Make `method` available by its name (a name taken by another method is a ValueError)."""
    return _EVALUATION_METHODS.register(method.name, method)


def get_method(name: str) -> EvalMethod:
    """The method registered as `name`; an unknown name raises UnknownMethodError with the allowed names."""
    return _EVALUATION_METHODS.get(name)


def method_names() -> list[str]:
    """Every registered method name, in registration order (the paper's six first)."""
    return _EVALUATION_METHODS.names()


def expand_methods(names: Sequence[str]) -> list[str]:
    """'marked' -> both marked variants, 'all' -> the PASTA paper's six; unknown names raise with the allowed."""
    methods: list[str] = []
    for name in names:
        name = name.strip()
        if name not in ALIASES and name not in _EVALUATION_METHODS:
            raise _EVALUATION_METHODS.unknown(name, also=ALIASES)
        methods += [method for method in ALIASES.get(name, (name,)) if method not in methods]
    return methods


def methods_using(parameter: str, methods: Sequence[str]) -> list[str]:
    """Those of `methods` whose results depend on `evaluate` parameter `parameter` ("alpha", "boost", ...)."""
    return [name for name in methods if parameter in get_method(name).parameters]


def check_parameters_used(methods: Sequence[str], given: dict[str, Any], spell: Callable[[str], str] = str) -> None:
    """Each parameter in `given` (None: not given) must be used by one of `methods`; else an error naming the
    methods that do use it (a --boost with no instaboost run would silently do nothing)."""
    for parameter, value in given.items():
        if value not in (None, [], ()) and not methods_using(parameter, methods):
            users = methods_using(parameter, method_names())
            raise AttnsteerError(f"{spell(parameter)} is given but none of the methods {', '.join(methods)} uses it; "
                                 f"add {' or '.join(users)} to the methods")


def render(method: str, example: Example, demonstrations: Sequence[Example] = ()) -> RenderedPrompt:
    """The prompt for `example` under `method` (demonstrations are used by the few-shot methods only)."""
    spec = get_method(method)
    if spec.render is None:
        raise AttnsteerError(f"evaluation method {method!r} reads a context and renders no prompt; "
                             "it runs through attnsteer.context.evaluation")
    return spec.render(example, demonstrations)


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


def _zero_shot(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(example.prompt, None)


def _marked_star(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(wrap_spans(example.prompt, example.emphasis, "*"), None)


def _marked_quote(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(wrap_spans(example.prompt, example.emphasis, '"'), None)


def _pasta(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(example.prompt, example.emphasis)


def _few_shot(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(example.prompt, None, _pairs(demonstrations))


def _few_shot_pasta(example: Example, demonstrations: Sequence[Example]) -> RenderedPrompt:
    return RenderedPrompt(example.prompt, example.emphasis, _pairs(demonstrations))


def _pairs(demonstrations: Sequence[Example]) -> tuple[tuple[str, str], ...]:
    return tuple((demo.prompt, demo.answer) for demo in demonstrations)


register_method(EvalMethod("zero-shot", _zero_shot, steers=False))
register_method(EvalMethod("marked-star", _marked_star, steers=False))
register_method(EvalMethod("marked-quote", _marked_quote, steers=False))
register_method(EvalMethod("few-shot", _few_shot, steers=False, demonstrations=True))
register_method(EvalMethod("pasta", _pasta, steers=True, steering="pasta"))
register_method(EvalMethod("few-shot+pasta", _few_shot_pasta, steers=True, demonstrations=True, steering="pasta"))
# "all": the PASTA paper's six, registered above; the methods below are named one by one.
PAPER_METHODS = tuple(method_names())
register_method(EvalMethod("autopasta", None, steers=True, reads_context=True))
register_method(EvalMethod("llmsteer", None, steers=True, reads_context=True))
# PASTA's prompt and emphasis, steered by another method (no head set: every head of every layer).
register_method(EvalMethod("instaboost", _pasta, steers=True, steering="instaboost"))
register_method(EvalMethod("spotlight", _pasta, steers=True, steering="spotlight"))
register_method(EvalMethod("spa", _pasta, steers=True, anchoring=True))

ALIASES: dict[str, tuple[str, ...]] = {"marked": ("marked-star", "marked-quote"), "all": PAPER_METHODS}
