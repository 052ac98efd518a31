from __future__ import annotations

import pytest

from attnsteer.errors import SpanError
from attnsteer.spans import CharSpan, find_substring_spans

TEXT = "the cat and the dog and the cat"


def test_first_occurrence() -> None:
    assert find_substring_spans(TEXT, ["cat", "dog"]) == [CharSpan(4, 7), CharSpan(16, 19)]


def test_all_occurrences() -> None:
    spans = find_substring_spans(TEXT, ["the", "cat"], occurrence="all")
    assert spans == [
        CharSpan(0, 3),
        CharSpan(12, 15),
        CharSpan(24, 27),
        CharSpan(4, 7),
        CharSpan(28, 31),
    ]


def test_all_occurrences_do_not_overlap() -> None:
    assert find_substring_spans("aaaa", ["aa"], occurrence="all") == [
        CharSpan(0, 2),
        CharSpan(2, 4),
    ]


def test_bare_string_is_one_substring() -> None:
    assert find_substring_spans(TEXT, "and the") == [CharSpan(8, 15)]


def test_no_substrings() -> None:
    assert find_substring_spans(TEXT, []) == []


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_blank_substring_rejected(bad: str) -> None:
    with pytest.raises(SpanError, match="empty or whitespace-only"):
        find_substring_spans(TEXT, [bad])


def test_non_str_substring_rejected() -> None:
    with pytest.raises(SpanError, match="must be a str, got 3"):
        find_substring_spans(TEXT, [3])  # type: ignore[list-item]


def test_not_found_message() -> None:
    with pytest.raises(SpanError) as info:
        find_substring_spans(TEXT, ["cat", "bird"])
    message = str(info.value)
    assert "'bird'" in message
    assert "exact and case-sensitive" in message
    assert "case-insensitive match" not in message


def test_not_found_case_hint() -> None:
    with pytest.raises(SpanError) as info:
        find_substring_spans("Hello World", ["hello world"])
    message = str(info.value)
    assert "'hello world'" in message
    assert "case-insensitive match exists: 'Hello World'" in message


def test_not_found_truncates_long_substring() -> None:
    needle = "x" * 100
    with pytest.raises(SpanError) as info:
        find_substring_spans(TEXT, [needle])
    message = str(info.value)
    assert repr("x" * 60) + "..." in message
    assert "x" * 61 not in message


def test_bad_occurrence_names_allowed_values() -> None:
    with pytest.raises(SpanError) as info:
        find_substring_spans(TEXT, ["cat"], occurrence="last")  # type: ignore[arg-type]
    message = str(info.value)
    assert "'last'" in message
    assert "'first'" in message
    assert "'all'" in message
