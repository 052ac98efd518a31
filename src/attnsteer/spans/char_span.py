"""Half-open character spans ``[start, end)`` and helpers to validate and merge them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from attnsteer.errors import SpanError

_ALLOWED_FORMS = "a CharSpan, a (start, end) pair of ints, or a dict with 'start' and 'end'"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, order=True)
class CharSpan:
    """A non-empty half-open character range ``[start, end)`` of a text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (_is_int(self.start) and _is_int(self.end)):
            raise SpanError(f"span bounds must be ints, got start={self.start!r}, end={self.end!r}")
        if self.start < 0:
            raise SpanError(f"span start must be >= 0, got start={self.start} (end={self.end})")
        if self.end <= self.start:
            raise SpanError(f"empty span: start={self.start}, end={self.end}; end must be greater than start")

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, start: int, end: int) -> bool:
        """Whether the half-open range ``[start, end)`` shares at least one character."""
        return start < self.end and self.start < end


SpanLike = CharSpan | tuple[int, int] | Mapping[str, int]
"""Any form a character span may be given in."""


def as_char_span(item: object) -> CharSpan:
    """Convert a CharSpan, a ``(start, end)`` pair or a ``{"start", "end"}`` dict to a CharSpan."""
    if isinstance(item, CharSpan):
        return item
    if isinstance(item, Mapping):
        if set(item) != {"start", "end"}:
            raise SpanError(f"span dict {dict(item)!r} must have exactly the keys 'start' and 'end'")
        return CharSpan(item["start"], item["end"])
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return CharSpan(item[0], item[1])
    raise SpanError(f"cannot use {item!r} as a span; expected {_ALLOWED_FORMS}")


def validate_spans(text: str, spans: Sequence[SpanLike]) -> list[CharSpan]:
    """Convert each span to a CharSpan and check it lies inside ``text`` (order is kept)."""
    result = []
    for item in spans:
        span = as_char_span(item)
        if span.end > len(text):
            raise SpanError(
                f"span [{span.start}, {span.end}) is out of range for a text of "
                f"len(text)={len(text)} characters; spans must satisfy 0 <= start < end <= "
                f"{len(text)}"
            )
        result.append(span)
    return result


def merge_spans(spans: Iterable[CharSpan]) -> list[CharSpan]:
    """Sort spans and merge overlapping or adjacent ones (the emphasis is their union)."""
    merged: list[CharSpan] = []
    for span in sorted(spans):
        if merged and span.start <= merged[-1].end:
            last = merged.pop()
            span = CharSpan(last.start, max(last.end, span.end))
        merged.append(span)
    return merged
