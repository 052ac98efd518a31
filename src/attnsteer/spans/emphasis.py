"""One entry point turning every form of user emphasis into clean text plus char spans."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attnsteer.errors import AttnsteerError, EmptyPromptError, SpanError
from attnsteer.spans.char_span import CharSpan, SpanLike, merge_spans, validate_spans
from attnsteer.spans.markup import DEFAULT_MARKUP, MarkedText, MarkupStyle, parse_markup
from attnsteer.spans.substrings import (
    Occurrence,
    check_occurrence,
    find_substring_spans,
)

EmphasisItem = str | SpanLike
"""A substring, or character offsets ``[start, end)`` in the clean (markup-free) text."""
Emphasis = None | str | CharSpan | Mapping[str, int] | Sequence[EmphasisItem]
"""What may be passed as the emphasis of one prompt."""

_ALLOWED_ITEMS = "a substring (str), a (start, end) pair of ints, a CharSpan, or a dict with 'start' and 'end'"


def _check_prompt(prompt: object, what: str = "prompt") -> str:
    if not isinstance(prompt, str):
        raise TypeError(f"{what} must be a str, got {type(prompt).__name__}: {prompt!r}")
    if not prompt.strip():
        raise EmptyPromptError(f"{what} {prompt!r} is empty or whitespace-only; give some text")
    return prompt


def _as_items(emphasize: Emphasis) -> list[EmphasisItem]:
    if emphasize is None:
        return []
    if isinstance(emphasize, (str, CharSpan, Mapping)):
        return [emphasize]
    if not isinstance(emphasize, Sequence):
        raise SpanError(
            f"emphasize {emphasize!r} is not allowed; give None, a str, or a list of items, each {_ALLOWED_ITEMS}"
        )
    items = list(emphasize)
    for item in items:
        if not isinstance(item, (str, CharSpan, Mapping, tuple, list)):
            hint = " (to pass one span, wrap it: [(start, end)])" if isinstance(item, int) else ""
            raise SpanError(f"emphasize item {item!r} is not allowed; each item must be {_ALLOWED_ITEMS}{hint}")
    return items


def resolve_emphasis(
    prompt: str,
    emphasize: Emphasis = None,
    *,
    markup: MarkupStyle | None = DEFAULT_MARKUP,
    occurrence: Occurrence = "first",
) -> MarkedText:
    """Parse markup (unless ``markup`` is None), then locate ``emphasize`` in the clean text.

    Substrings are matched exactly; offsets refer to the clean text. The result's spans are
    the merged union of the markup spans and the ``emphasize`` spans (possibly none).
    """
    _check_prompt(prompt)
    check_occurrence(occurrence)
    marked = parse_markup(prompt, markup) if markup is not None else MarkedText(prompt)
    _check_prompt(marked.text, "prompt with the markup removed")
    items = _as_items(emphasize)
    substrings = [item for item in items if isinstance(item, str)]
    offsets = [item for item in items if not isinstance(item, str)]
    spans = [
        *marked.spans,
        *find_substring_spans(marked.text, substrings, occurrence),
        *validate_spans(marked.text, offsets),
    ]
    return MarkedText(marked.text, tuple(merge_spans(spans)))


def resolve_batch(
    prompts: Sequence[str],
    emphasize: Sequence[Emphasis] | None = None,
    *,
    markup: MarkupStyle | None = DEFAULT_MARKUP,
    occurrence: Occurrence = "first",
) -> list[MarkedText]:
    """``resolve_emphasis`` for each prompt; ``emphasize`` needs one entry per prompt.

    An error about one prompt is re-raised with the prompt's index in front of the message.
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a sequence of str, got {type(prompts).__name__}")
    if not prompts:
        raise EmptyPromptError("no prompts given; pass at least one prompt")
    if emphasize is None:
        emphasize = [None] * len(prompts)
    elif isinstance(emphasize, str) or not isinstance(emphasize, Sequence):
        raise SpanError(f"emphasize for a batch must be a list with one entry per prompt, got {emphasize!r}")
    if len(emphasize) != len(prompts):
        raise SpanError(
            f"emphasize has {len(emphasize)} entries but there are {len(prompts)} prompts; "
            "give exactly one entry (None, a str, or a list) per prompt"
        )
    results = []
    for index, (prompt, entry) in enumerate(zip(prompts, emphasize, strict=True)):
        try:
            results.append(resolve_emphasis(prompt, entry, markup=markup, occurrence=occurrence))
        except AttnsteerError as err:
            raise type(err)(f"prompt {index}: {err}") from err
    return results
