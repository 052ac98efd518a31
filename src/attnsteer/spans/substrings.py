"""Locate emphasised substrings in a prompt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from attnsteer.errors import SpanError
from attnsteer.spans.char_span import CharSpan

Occurrence = Literal["first", "all"]
OCCURRENCES: tuple[str, ...] = ("first", "all")
_MAX_SHOWN = 60


def shorten(value: str, limit: int = _MAX_SHOWN) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters (with ``...`` when cut)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "..."


def check_occurrence(occurrence: object) -> None:
    """Raise SpanError unless ``occurrence`` is ``"first"`` or ``"all"``."""
    if occurrence not in OCCURRENCES:
        raise SpanError(f"occurrence must be one of {', '.join(map(repr, OCCURRENCES))}, got {occurrence!r}")


def _check_substring(substring: object) -> str:
    if not isinstance(substring, str):
        raise SpanError(f"emphasised substring must be a str, got {substring!r}")
    if not substring.strip():
        raise SpanError(
            f"emphasised substring {substring!r} is empty or whitespace-only; give a non-blank piece of the prompt"
        )
    return substring


def _not_found(text: str, substring: str) -> SpanError:
    message = (
        f"emphasised substring {shorten(substring)} was not found in the prompt (matching is exact and case-sensitive)"
    )
    match = re.search(re.escape(substring), text, flags=re.IGNORECASE)
    if match is not None:
        message += f"; hint: a case-insensitive match exists: {shorten(match.group(0))}"
    return SpanError(message)


def _all_starts(text: str, substring: str) -> list[int]:
    starts, index = [], text.find(substring)
    while index != -1:
        starts.append(index)
        index = text.find(substring, index + len(substring))
    return starts


def find_substring_spans(text: str, substrings: Sequence[str], occurrence: Occurrence = "first") -> list[CharSpan]:
    """Spans of each substring in ``text``: its first or all (non-overlapping) occurrences.

    Spans come in the order of ``substrings``, ascending within one substring; they are not
    merged. A bare str counts as one substring.
    """
    check_occurrence(occurrence)
    if isinstance(substrings, str):
        substrings = [substrings]
    spans: list[CharSpan] = []
    for substring in map(_check_substring, substrings):
        starts = _all_starts(text, substring)
        if not starts:
            raise _not_found(text, substring)
        if occurrence == "first":
            starts = starts[:1]
        spans.extend(CharSpan(s, s + len(substring)) for s in starts)
    return spans
