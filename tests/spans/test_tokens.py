from __future__ import annotations

import pytest

from attnsteer.errors import SpanError
from attnsteer.spans import CharSpan, check_spans_covered, token_emphasis_mask

# "<s>the quick brown fox<pad>" with offsets that include the leading space of a word.
OFFSETS = [(0, 0), (0, 3), (3, 9), (9, 12), (12, 15), (15, 19), (0, 0)]


def test_overlap_rule() -> None:
    mask = token_emphasis_mask(OFFSETS, [CharSpan(10, 15)])  # "brown"
    assert mask == [False, False, False, True, True, False, False]


def test_touching_is_not_overlapping() -> None:
    assert token_emphasis_mask([(0, 3), (3, 6)], [CharSpan(3, 6)]) == [False, True]
    assert token_emphasis_mask([(0, 3), (3, 6)], [CharSpan(0, 3)]) == [True, False]


def test_partial_overlap_selects_whole_token() -> None:
    assert token_emphasis_mask([(0, 5), (5, 10)], [CharSpan(4, 6)]) == [True, True]


def test_zero_width_tokens_never_emphasised() -> None:
    offsets = [(0, 0), (0, 4), (2, 2), (0, 0)]
    assert token_emphasis_mask(offsets, [CharSpan(0, 4)]) == [False, True, False, False]


def test_special_flags_override() -> None:
    offsets = [(0, 3), (3, 6), (6, 9)]
    mask = token_emphasis_mask(offsets, [CharSpan(0, 9)], special=[False, True, False])
    assert mask == [True, False, True]


def test_special_length_mismatch() -> None:
    with pytest.raises(SpanError, match="special has 1 entries but offsets has 2"):
        token_emphasis_mask([(0, 1), (1, 2)], [CharSpan(0, 1)], special=[False])


def test_several_spans_and_no_spans() -> None:
    spans = [CharSpan(0, 2), CharSpan(13, 14)]
    assert token_emphasis_mask(OFFSETS, spans) == [
        False,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert token_emphasis_mask(OFFSETS, []) == [False] * len(OFFSETS)


def test_accepts_lists_as_offsets() -> None:
    assert token_emphasis_mask([[0, 2], [2, 4]], [CharSpan(2, 3)]) == [False, True]


def test_check_spans_covered_passes() -> None:
    spans = [CharSpan(10, 15), CharSpan(1, 2)]  # "brown" (two tokens) and a character inside "the"
    mask = token_emphasis_mask(OFFSETS, spans)
    assert mask == [False, True, False, True, True, False, False]
    assert check_spans_covered(mask, spans, OFFSETS) is None  # every span overlaps an emphasised token
    with pytest.raises(SpanError, match=r"\[1, 2\)"):  # the same spans, one token flag short
        check_spans_covered([False, False, False, True, True, False, False], spans, OFFSETS)


def test_check_spans_covered_names_truncated_span() -> None:
    offsets = [(0, 0), (0, 3), (3, 9)]  # text truncated after "the quick"
    spans = [CharSpan(4, 9), CharSpan(10, 15)]
    mask = token_emphasis_mask(offsets, spans)
    with pytest.raises(SpanError) as info:
        check_spans_covered(mask, spans, offsets)
    message = str(info.value)
    assert "[10, 15)" in message
    assert "character 9" in message


def test_check_spans_covered_ignores_unmasked_overlap() -> None:
    offsets = [(0, 3), (3, 6)]
    spans = [CharSpan(0, 3)]
    with pytest.raises(SpanError, match=r"\[0, 3\)"):
        check_spans_covered([False, False], spans, offsets)


def test_check_spans_covered_length_mismatch() -> None:
    with pytest.raises(SpanError, match="mask has 1 entries"):
        check_spans_covered([True], [CharSpan(0, 1)], [(0, 1), (1, 2)])
