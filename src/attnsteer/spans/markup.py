"""Inline emphasis markup such as ``"the **key** point"``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from attnsteer.errors import MarkupError, SpanError
from attnsteer.spans.char_span import CharSpan


@dataclass(frozen=True)
class MarkupStyle:
    """Delimiters around emphasised text, and the escape that makes a delimiter char literal.

    An empty ``escape`` disables escaping.
    """

    open: str = "**"
    close: str = "**"
    escape: str = "\\"

    def __post_init__(self) -> None:
        for name in ("open", "close", "escape"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise MarkupError(f"markup {name} must be a str, got {value!r}")
        for name in ("open", "close"):
            if not getattr(self, name):
                raise MarkupError(f"markup {name} delimiter must be a non-empty string, got ''")
        if self.escape and (self.open.startswith(self.escape) or self.close.startswith(self.escape)):
            raise MarkupError(
                f"markup escape {self.escape!r} must not start a delimiter "
                f"(open={self.open!r}, close={self.close!r}); choose a different escape"
            )


DEFAULT_MARKUP = MarkupStyle()
"""The default style: ``**emphasised**``, escaped with a backslash."""


@dataclass(frozen=True)
class MarkedText:
    """A clean text (markup removed) and the emphasised character spans in it."""

    text: str
    spans: tuple[CharSpan, ...] = ()


def _scan(text: str, style: MarkupStyle) -> Iterator[tuple[bool, str, int]]:
    """Yield ``(is_delimiter, value, offset)``: literal characters or delimiter strings."""
    esc, delims = style.escape, sorted({style.open, style.close}, key=len, reverse=True)
    escapable = {style.open[0], style.close[0]}
    i = 0
    while i < len(text):
        if esc and text.startswith(esc, i):
            j = i + len(esc)
            if text.startswith(esc, j):
                yield False, esc, i
                i = j + len(esc)
            elif j < len(text) and text[j] in escapable:
                yield False, text[j], i
                i = j + 1
            else:
                yield False, esc, i
                i = j
            continue
        delim = next((d for d in delims if text.startswith(d, i)), None)
        if delim is not None:
            yield True, delim, i
            i += len(delim)
        else:
            yield False, text[i], i
            i += 1


def _unclosed_message(style: MarkupStyle, offset: int) -> str:
    hint = f" or escape it as {style.escape + style.open[0]!r}" if style.escape else ""
    return (
        f"unbalanced markup: {style.open!r} opened at character offset {offset} is never "
        f"closed; close it with {style.close!r}{hint}"
    )


def _stray_message(style: MarkupStyle, delim: str, offset: int, opened: int | None) -> str:
    if opened is None:
        what = f"closing {delim!r} at character offset {offset} has no matching {style.open!r}"
    else:
        what = (
            f"{delim!r} at character offset {offset} opens inside the span opened at "
            f"offset {opened}; nested emphasis is not allowed"
        )
    return f"malformed markup: {what}; use {style.open!r}text{style.close!r} pairs"


def parse_markup(text: str, style: MarkupStyle = DEFAULT_MARKUP) -> MarkedText:
    """Remove the markup from ``text``; return the clean text and the emphasised spans."""
    out: list[str] = []
    spans: list[CharSpan] = []
    opened: int | None = None  # offset in ``text`` of the open delimiter
    start = 0  # offset in the clean text where the open span starts
    length = 0
    for is_delim, value, offset in _scan(text, style):
        if not is_delim:
            out.append(value)
            length += len(value)
        elif opened is not None and value == style.close:
            if length == start:
                raise SpanError(
                    f"empty emphasis {style.open + style.close!r} at character offset "
                    f"{opened}; put text between the delimiters or remove them"
                )
            spans.append(CharSpan(start, length))
            opened = None
        elif opened is None and value == style.open:
            opened, start = offset, length
        else:
            raise MarkupError(_stray_message(style, value, offset, opened))
    if opened is not None:
        raise MarkupError(_unclosed_message(style, opened))
    return MarkedText("".join(out), tuple(spans))


def has_markup(text: str, style: MarkupStyle = DEFAULT_MARKUP) -> bool:
    """Whether ``text`` contains an unescaped opening delimiter."""
    return any(is_delim and value == style.open for is_delim, value, _ in _scan(text, style))


def strip_markup(text: str, style: MarkupStyle = DEFAULT_MARKUP) -> str:
    """The text with the markup removed (same as ``parse_markup(text, style).text``)."""
    return parse_markup(text, style).text
