from __future__ import annotations

import pytest

from attnsteer.errors import EmptyPromptError, MarkupError, SpanError
from attnsteer.spans import (
    CharSpan,
    MarkedText,
    MarkupStyle,
    resolve_batch,
    resolve_emphasis,
)


def words(marked: MarkedText) -> list[str]:
    return [marked.text[s.start : s.end] for s in marked.spans]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t "])
def test_empty_prompt(prompt: str) -> None:
    with pytest.raises(EmptyPromptError):
        resolve_emphasis(prompt, "x")


def test_prompt_empty_after_markup_removed() -> None:
    with pytest.raises(EmptyPromptError, match="markup removed"):
        resolve_emphasis("** **")


def test_markup_only() -> None:
    marked = resolve_emphasis("the **brown** fox")
    assert marked == MarkedText("the brown fox", (CharSpan(4, 9),))


def test_no_emphasis_gives_no_spans() -> None:
    assert resolve_emphasis("plain prompt") == MarkedText("plain prompt", ())
    assert resolve_emphasis("a **b**", markup=None) == MarkedText("a **b**", ())


def test_bare_string_is_one_substring() -> None:
    marked = resolve_emphasis("the brown fox", "brown fox")
    assert marked.spans == (CharSpan(4, 13),)


def test_mixed_items_are_located_in_clean_text() -> None:
    marked = resolve_emphasis(
        "**the** brown fox jumps over",
        ["jumps", (4, 9), {"start": 10, "end": 13}],
    )
    assert marked.text == "the brown fox jumps over"
    assert words(marked) == ["the", "brown", "fox", "jumps"]


def test_single_charspan_and_dict() -> None:
    assert resolve_emphasis("abcdef", CharSpan(1, 3)).spans == (CharSpan(1, 3),)
    assert resolve_emphasis("abcdef", {"start": 2, "end": 4}).spans == (CharSpan(2, 4),)


def test_spans_merged_as_union() -> None:
    marked = resolve_emphasis("a **bc** d", ["b", "c d", (0, 1)])
    assert marked.text == "a bc d"
    assert marked.spans == (CharSpan(0, 1), CharSpan(2, 6))


def test_occurrence_all() -> None:
    marked = resolve_emphasis("cat dog cat", ["cat"], occurrence="all")
    assert words(marked) == ["cat", "cat"]
    first = resolve_emphasis("cat dog cat", ["cat"])
    assert first.spans == (CharSpan(0, 3),)


def test_substring_searched_in_clean_text_only() -> None:
    with pytest.raises(SpanError, match="'\\*\\*b'"):
        resolve_emphasis("a **b**", ["**b"])
    marked = resolve_emphasis("a **b**", ["**b"], markup=None)
    assert marked.spans == (CharSpan(2, 5),)


def test_offsets_out_of_clean_text_range() -> None:
    with pytest.raises(SpanError, match=r"len\(text\)=5"):
        resolve_emphasis("**hello**", [(0, 9)])


def test_custom_markup() -> None:
    marked = resolve_emphasis("x [[y]] z", markup=MarkupStyle("[[", "]]"))
    assert words(marked) == ["y"]


def test_markup_errors_propagate() -> None:
    with pytest.raises(MarkupError):
        resolve_emphasis("a **b", "a")


def test_bare_pair_of_ints_gets_hint() -> None:
    with pytest.raises(SpanError, match=r"wrap it"):
        resolve_emphasis("abcdef", (1, 3))  # type: ignore[arg-type]


def test_bad_emphasize_type() -> None:
    with pytest.raises(SpanError, match="not allowed"):
        resolve_emphasis("abc", 5)  # type: ignore[arg-type]


def test_bad_occurrence() -> None:
    with pytest.raises(SpanError, match="'first', 'all'"):
        resolve_emphasis("abc", None, occurrence="every")  # type: ignore[arg-type]


def test_batch() -> None:
    results = resolve_batch(["a **b** c", "d e f", "g h"], [None, ["e"], [(0, 1)]])
    assert [words(r) for r in results] == [["b"], ["e"], ["g"]]
    assert [r.text for r in results] == ["a b c", "d e f", "g h"]


def test_batch_without_emphasis() -> None:
    results = resolve_batch(["**x** y", "z"])
    assert [r.spans for r in results] == [(CharSpan(0, 1),), ()]


def test_batch_length_mismatch_names_both_lengths() -> None:
    with pytest.raises(SpanError) as info:
        resolve_batch(["a", "b", "c"], [["a"], ["b"]])
    message = str(info.value)
    assert "2 entries" in message
    assert "3 prompts" in message


def test_batch_rejects_bare_string_emphasis() -> None:
    with pytest.raises(SpanError, match="one entry per prompt"):
        resolve_batch(["ab", "cd"], "ab")  # type: ignore[arg-type]


def test_batch_error_names_prompt_index() -> None:
    with pytest.raises(SpanError, match=r"^prompt 1: .*'zzz'"):
        resolve_batch(["abc", "def"], [["a"], ["zzz"]])
    with pytest.raises(EmptyPromptError, match="^prompt 2: "):
        resolve_batch(["abc", "def", " "])


def test_batch_requires_prompts() -> None:
    with pytest.raises(EmptyPromptError, match="no prompts"):
        resolve_batch([])
    with pytest.raises(TypeError):
        resolve_batch("abc")
