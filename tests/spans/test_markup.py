from __future__ import annotations

import pytest

from attnsteer.errors import MarkupError, SpanError
from attnsteer.spans import (
    DEFAULT_MARKUP,
    CharSpan,
    MarkedText,
    MarkupStyle,
    has_markup,
    parse_markup,
    strip_markup,
)

BRACKETS = MarkupStyle(open="[[", close="]]")


def emphasised(marked: MarkedText) -> list[str]:
    return [marked.text[s.start : s.end] for s in marked.spans]


def test_default_style() -> None:
    assert DEFAULT_MARKUP == MarkupStyle("**", "**", "\\")


def test_several_spans_round_trip() -> None:
    marked = parse_markup("The **cat** sat on the **red mat**, **twice**.")
    assert marked.text == "The cat sat on the red mat, twice."
    assert marked.spans == (CharSpan(4, 7), CharSpan(19, 26), CharSpan(28, 33))
    assert emphasised(marked) == ["cat", "red mat", "twice"]


def test_span_at_start_and_end() -> None:
    marked = parse_markup("**a** b **c**")
    assert marked.text == "a b c"
    assert emphasised(marked) == ["a", "c"]


def test_no_markup_is_identity() -> None:
    marked = parse_markup("plain * text with single stars *")
    assert marked == MarkedText("plain * text with single stars *", ())


def test_escaped_star_is_literal() -> None:
    marked = parse_markup(r"2 \* 3 is **six**")
    assert marked.text == "2 * 3 is six"
    assert emphasised(marked) == ["six"]


def test_escaped_double_star_is_literal() -> None:
    marked = parse_markup(r"x \*\* y **z** and \** too")
    assert marked.text == "x ** y z and ** too"
    assert emphasised(marked) == ["z"]


def test_double_escape_is_one_backslash() -> None:
    marked = parse_markup(r"a\\**b**")
    assert marked.text == "a\\b"
    assert marked.spans == (CharSpan(2, 3),)


def test_escape_before_other_char_kept() -> None:
    marked = parse_markup(r"C:\path\to **file**\n")
    assert marked.text == r"C:\path\to file\n"
    assert emphasised(marked) == ["file"]


def test_trailing_escape_kept() -> None:
    assert parse_markup("end\\").text == "end\\"


def test_escape_inside_span() -> None:
    marked = parse_markup(r"**a \* b**")
    assert marked.text == "a * b"
    assert marked.spans == (CharSpan(0, 5),)


def test_custom_paired_delimiters() -> None:
    marked = parse_markup("keep **stars** but [[this]] and [[that one]]", BRACKETS)
    assert marked.text == "keep **stars** but this and that one"
    assert emphasised(marked) == ["this", "that one"]


def test_custom_escape() -> None:
    style = MarkupStyle(open="<", close=">", escape="~")
    marked = parse_markup("a ~< b <c> ~~ d ~x", style)
    assert marked.text == "a < b c ~ d ~x"
    assert emphasised(marked) == ["c"]


def test_escape_disabled() -> None:
    marked = parse_markup(r"a\**b**", MarkupStyle(escape=""))
    assert marked.text == "a\\b"
    assert emphasised(marked) == ["b"]


def test_unbalanced_names_offset() -> None:
    with pytest.raises(MarkupError) as info:
        parse_markup("ok **fine** then **open")
    message = str(info.value)
    assert "offset 17" in message
    assert "'**'" in message


def test_unbalanced_offset_counts_escapes_in_original_text() -> None:
    with pytest.raises(MarkupError, match="offset 4"):
        parse_markup(r"\*\***x")


def test_empty_pair_is_span_error() -> None:
    with pytest.raises(SpanError) as info:
        parse_markup("a **** b")
    assert "offset 2" in str(info.value)
    assert not isinstance(info.value, MarkupError)


def test_stray_closer_with_paired_style() -> None:
    with pytest.raises(MarkupError) as info:
        parse_markup("a ]] b", BRACKETS)
    assert "offset 2" in str(info.value)
    assert "']]'" in str(info.value)


def test_nested_opener_with_paired_style() -> None:
    with pytest.raises(MarkupError, match="nested") as info:
        parse_markup("[[a [[b]] c]]", BRACKETS)
    assert "offset 4" in str(info.value)


def test_unclosed_paired_style() -> None:
    with pytest.raises(MarkupError, match="offset 2"):
        parse_markup("x [[y", BRACKETS)


def test_same_delimiter_alternates() -> None:
    marked = parse_markup("**a****b**")
    assert marked.text == "ab"
    assert marked.spans == (CharSpan(0, 1), CharSpan(1, 2))


@pytest.mark.parametrize(
    "kwargs",
    [{"open": ""}, {"close": ""}, {"escape": "*"}, {"open": 3}],
)
def test_invalid_style(kwargs: dict[str, object]) -> None:
    with pytest.raises(MarkupError):
        MarkupStyle(**kwargs)  # type: ignore[arg-type]


def test_has_markup() -> None:
    assert has_markup("a **b** c")
    assert has_markup("unbalanced **b")
    assert not has_markup("plain")
    assert not has_markup(r"escaped \*\* only")
    assert has_markup("x [[y]]", BRACKETS)
    assert not has_markup("x **y**", BRACKETS)
    assert not has_markup("only a closer ]]", BRACKETS)


def test_strip_markup() -> None:
    assert strip_markup(r"**a** \* b") == "a * b"
    assert strip_markup("[[a]] **b**", BRACKETS) == "a **b**"
