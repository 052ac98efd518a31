"""Map character spans to token positions using a fast tokenizer's offset mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attnsteer.errors import SpanError
from attnsteer.spans.char_span import CharSpan
from attnsteer.spans.markup import MarkedText

Offsets = Sequence[tuple[int, int]]


def _pair(offset: Sequence[int]) -> tuple[int, int]:
    start, end = offset
    return int(start), int(end)


def _check_length(name: str, values: Sequence[object], offsets: Offsets) -> None:
    if len(values) != len(offsets):
        raise SpanError(
            f"{name} has {len(values)} entries but offsets has {len(offsets)}; they must have one entry per token"
        )


def token_emphasis_mask(
    offsets: Offsets, spans: Sequence[CharSpan], special: Sequence[bool] | None = None
) -> list[bool]:
    """One flag per token: True iff its char range ``[s, e)`` overlaps any span.

    Tokens with ``s == e`` (special tokens such as BOS or padding map to ``(0, 0)``) and tokens
    flagged in ``special`` are never emphasised.
    """
    if special is not None:
        _check_length("special", special, offsets)
    mask = []
    for index, offset in enumerate(offsets):
        start, end = _pair(offset)
        if start == end or (special is not None and special[index]):
            mask.append(False)
        else:
            mask.append(any(span.overlaps(start, end) for span in spans))
    return mask


def check_spans_covered(mask: Sequence[bool], spans: Sequence[CharSpan], offsets: Offsets) -> None:
    """Raise SpanError naming the first span that no emphasised token overlaps.

    That happens e.g. when a span lies entirely in text cut off by truncation.
    """
    _check_length("mask", mask, offsets)
    pairs = [_pair(offset) for offset in offsets]
    for span in spans:
        if not any(flag and span.overlaps(*pair) for flag, pair in zip(mask, pairs, strict=True)):
            covered = max((end for _, end in pairs), default=0)
            raise SpanError(
                f"emphasis span [{span.start}, {span.end}) covers no token; the tokens cover "
                f"text only up to character {covered} (was the prompt truncated?); every "
                "span must overlap at least one non-special token"
            )


def encode_marked(tokenizer: Any, marked: MarkedText, add_special_tokens: bool = True) -> tuple[list[int], list[bool]]:
    """Token ids of `marked.text` and one emphasis flag per token (a fast tokenizer, with offsets).

    Every span must cover at least one non-special token (SpanError otherwise). The one place where
    text with char spans becomes tokens: `Steerer.encode` and the server both use it.
    """
    encoded = tokenizer(marked.text, return_offsets_mapping=True, return_special_tokens_mask=True,
                        add_special_tokens=add_special_tokens)
    offsets = [_pair(pair) for pair in encoded["offset_mapping"]]
    flags = token_emphasis_mask(offsets, marked.spans, [bool(flag) for flag in encoded["special_tokens_mask"]])
    check_spans_covered(flags, marked.spans, offsets)
    return list(encoded["input_ids"]), flags
