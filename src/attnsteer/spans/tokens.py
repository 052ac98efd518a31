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


def encode_marked(
    tokenizer: Any, marked: MarkedText, add_special_tokens: bool = True, control_spans: Sequence[CharSpan] = (),
) -> tuple[list[int], list[bool]]:
    """Token ids of `marked.text` and one emphasis flag per token (a fast tokenizer, with offsets).

    The text is tokenised as text: a control token typed in it (`<eos>`, `<|im_end|>`) becomes ordinary
    tokens, so user text can never end a turn or start a sequence. Only inside `control_spans` (a chat
    template's own markers, sorted, not overlapping) do control tokens keep their meaning; the pieces are
    then tokenised one by one (and `add_special_tokens` must be False: the template holds its own).
    Every span must cover at least one non-special token (SpanError otherwise). The one place where
    text with char spans becomes tokens: `Steerer.encode` and the server both use it.
    """
    if control_spans and add_special_tokens:
        raise ValueError("a text with control spans (a rendered chat template) carries its own special tokens")
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    special: list[bool] = []
    for start, end, is_control in _pieces(len(marked.text), control_spans):
        encoded = tokenizer(marked.text[start:end], return_offsets_mapping=True, return_special_tokens_mask=True,
                            add_special_tokens=add_special_tokens, split_special_tokens=not is_control)
        ids += encoded["input_ids"]
        offsets += [(a + start, b + start) if b > a else (a, b) for a, b in map(_pair, encoded["offset_mapping"])]
        special += [bool(flag) for flag in encoded["special_tokens_mask"]]
    flags = token_emphasis_mask(offsets, marked.spans, special)
    check_spans_covered(flags, marked.spans, offsets)
    return ids, flags


def _pieces(length: int, control_spans: Sequence[CharSpan]) -> list[tuple[int, int, bool]]:
    """[start, end) pieces covering the text, each flagged True when it is a control span."""
    pieces, cursor = [], 0
    for span in control_spans:
        if span.start < cursor or span.end > length:
            raise ValueError(f"control spans must be sorted, disjoint and inside the text, got {list(control_spans)}")
        if span.start > cursor:
            pieces.append((cursor, span.start, False))
        pieces.append((span.start, span.end, True))
        cursor = span.end
    if cursor < length or not pieces:
        pieces.append((cursor, length, False))
    return pieces
