"""token_emphasis_mask on the offsets of a real HF fast tokenizer (built offline)."""

from __future__ import annotations

from typing import Any

import pytest

from attnsteer.errors import SpanError
from attnsteer.spans import check_spans_covered, resolve_batch, token_emphasis_mask

from .conftest import SPACE_MARKERS

PROMPTS = ["the quick **brown** **zebra** fox jumps", "the **xyzzy** dog"]
# Word indices (by whitespace split of the clean text) that are emphasised in each prompt.
EMPHASISED_WORDS = [{2, 3}, {1}]


def expected_mask(encoding: Any, row: int, tokens: list[str], words: set[int]) -> list[bool]:
    """Tokens of the emphasised words, except a bare space marker (it covers only a space)."""
    return [
        word in words and token not in SPACE_MARKERS for word, token in zip(encoding.word_ids(row), tokens, strict=True)
    ]


def test_mask_selects_exactly_the_emphasised_words(fast_tokenizer: Any) -> None:
    marked = resolve_batch(PROMPTS)
    texts = [m.text for m in marked]
    encoding = fast_tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True, padding=True)
    for row, (item, words) in enumerate(zip(marked, EMPHASISED_WORDS, strict=True)):
        offsets = encoding["offset_mapping"][row]
        special = [bool(flag) for flag in encoding["special_tokens_mask"][row]]
        tokens = fast_tokenizer.convert_ids_to_tokens(encoding["input_ids"][row])
        mask = token_emphasis_mask(offsets, item.spans, special)
        assert mask == expected_mask(encoding, row, tokens, words), (tokens, offsets)
        assert not mask[0]  # BOS
        assert sum(mask) >= len(words) + 1  # an unseen word splits into several tokens
        assert not any(m for m, s in zip(mask, special, strict=True) if s)
        check_spans_covered(mask, item.spans, offsets)


def test_multi_word_span_selects_contiguous_tokens(fast_tokenizer: Any) -> None:
    item = resolve_batch(["the quick **brown zebra** fox"])[0]
    encoding = fast_tokenizer(item.text, return_offsets_mapping=True)
    offsets = encoding["offset_mapping"]
    mask = token_emphasis_mask(offsets, item.spans)
    chosen = [i for i, flag in enumerate(mask) if flag]
    assert chosen == list(range(chosen[0], chosen[-1] + 1))
    selected = "".join(item.text[s:e] for (s, e), flag in zip(offsets, mask, strict=True) if flag)
    assert selected.strip() == "brown zebra"
    before, after = offsets[chosen[0] - 1], offsets[chosen[-1] + 1]
    assert item.text[before[0] : before[1]].strip() == "quick"
    assert item.text[after[0] : after[1]].strip() == "fox"


def test_mask_without_special_flags_still_skips_zero_width(fast_tokenizer: Any) -> None:
    text = "the lazy dog"
    encoding = fast_tokenizer(
        [text, "a much longer sentence than the first one"], return_offsets_mapping=True, padding=True
    )
    offsets = encoding["offset_mapping"][0]
    assert encoding["input_ids"][0].count(fast_tokenizer.pad_token_id) > 0
    mask = token_emphasis_mask(offsets, resolve_batch(["**the** lazy dog"])[0].spans)
    assert mask[0] is False
    assert all(not m for m, (s, e) in zip(mask, offsets, strict=True) if s == e)
    assert any(mask)


def test_truncated_span_is_reported(fast_tokenizer: Any) -> None:
    item = resolve_batch(["the quick brown fox jumps over the **lazy** dog"])[0]
    encoding = fast_tokenizer(item.text, return_offsets_mapping=True, truncation=True, max_length=4)
    offsets = encoding["offset_mapping"]
    mask = token_emphasis_mask(offsets, item.spans)
    assert not any(mask)
    with pytest.raises(SpanError, match=r"\[35, 39\)"):
        check_spans_covered(mask, item.spans, offsets)
