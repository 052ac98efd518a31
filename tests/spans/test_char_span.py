from __future__ import annotations

import pytest

from attnsteer.errors import SpanError
from attnsteer.spans import CharSpan, as_char_span, merge_spans, validate_spans


def test_charspan_is_half_open_and_ordered() -> None:
    span = CharSpan(2, 5)
    assert len(span) == 3
    assert span.overlaps(4, 9)
    assert not span.overlaps(5, 9)
    assert not span.overlaps(0, 2)
    assert sorted([CharSpan(3, 4), CharSpan(1, 9), CharSpan(1, 2)]) == [
        CharSpan(1, 2),
        CharSpan(1, 9),
        CharSpan(3, 4),
    ]


def test_charspan_is_frozen() -> None:
    span = CharSpan(0, 1)
    with pytest.raises(AttributeError):
        span.start = 3  # type: ignore[misc]


@pytest.mark.parametrize(("start", "end"), [(3, 3), (5, 2)])
def test_empty_span_rejected(start: int, end: int) -> None:
    with pytest.raises(SpanError, match="empty span") as info:
        CharSpan(start, end)
    assert f"start={start}" in str(info.value)
    assert f"end={end}" in str(info.value)


def test_negative_start_rejected() -> None:
    with pytest.raises(SpanError, match=r"start must be >= 0, got start=-1"):
        CharSpan(-1, 4)


@pytest.mark.parametrize(("start", "end"), [(0.0, 3), (0, "3"), (True, 3), (0, None)])
def test_non_int_bounds_rejected(start: object, end: object) -> None:
    with pytest.raises(SpanError, match="must be ints"):
        CharSpan(start, end)  # type: ignore[arg-type]


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        CharSpan(1, 1)


@pytest.mark.parametrize("item", [CharSpan(1, 3), (1, 3), [1, 3], {"start": 1, "end": 3}])
def test_as_char_span_accepts_every_form(item: object) -> None:
    assert as_char_span(item) == CharSpan(1, 3)


@pytest.mark.parametrize("item", [(1, 2, 3), "ab", 5, {"start": 1}, {"start": 1, "end": 2, "x": 0}])
def test_as_char_span_rejects_other_forms(item: object) -> None:
    with pytest.raises(SpanError) as info:
        as_char_span(item)
    message = str(info.value)
    assert "start" in message
    assert "end" in message


def test_validate_spans_keeps_order_and_converts() -> None:
    spans = validate_spans("hello world", [(6, 11), {"start": 0, "end": 5}])
    assert spans == [CharSpan(6, 11), CharSpan(0, 5)]


def test_validate_spans_accepts_span_ending_at_text_end() -> None:
    assert validate_spans("abc", [(0, 3)]) == [CharSpan(0, 3)]


def test_validate_spans_out_of_range_names_span_and_length() -> None:
    with pytest.raises(SpanError) as info:
        validate_spans("abc", [(0, 2), (2, 4)])
    message = str(info.value)
    assert "[2, 4)" in message
    assert "len(text)=3" in message


def test_validate_spans_empty_list() -> None:
    assert validate_spans("abc", []) == []


def test_merge_overlapping_and_adjacent() -> None:
    spans = [CharSpan(10, 12), CharSpan(0, 3), CharSpan(2, 5), CharSpan(5, 7)]
    assert merge_spans(spans) == [CharSpan(0, 7), CharSpan(10, 12)]


def test_merge_contained_and_duplicates() -> None:
    spans = [CharSpan(0, 10), CharSpan(2, 3), CharSpan(0, 10), CharSpan(11, 12)]
    assert merge_spans(spans) == [CharSpan(0, 10), CharSpan(11, 12)]


def test_merge_keeps_gaps() -> None:
    spans = [CharSpan(4, 6), CharSpan(0, 3)]
    assert merge_spans(spans) == [CharSpan(0, 3), CharSpan(4, 6)]
    assert merge_spans([]) == []
