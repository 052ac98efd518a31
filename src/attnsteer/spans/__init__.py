"""Turn a user's emphasis (markup, substrings or char offsets) into char spans and tokens.

Pure Python: nothing here imports torch or transformers.
"""

from __future__ import annotations

from attnsteer.spans.char_span import (
    CharSpan,
    SpanLike,
    as_char_span,
    merge_spans,
    validate_spans,
)
from attnsteer.spans.emphasis import (
    Emphasis,
    EmphasisItem,
    resolve_batch,
    resolve_emphasis,
)
from attnsteer.spans.markup import (
    DEFAULT_MARKUP,
    MarkedText,
    MarkupStyle,
    has_markup,
    parse_markup,
    strip_markup,
)
from attnsteer.spans.substrings import Occurrence, find_substring_spans
from attnsteer.spans.tokens import check_spans_covered, encode_marked, token_emphasis_mask

__all__ = [
    "DEFAULT_MARKUP",
    "CharSpan",
    "Emphasis",
    "EmphasisItem",
    "MarkedText",
    "MarkupStyle",
    "Occurrence",
    "SpanLike",
    "as_char_span",
    "check_spans_covered",
    "encode_marked",
    "find_substring_spans",
    "has_markup",
    "merge_spans",
    "parse_markup",
    "resolve_batch",
    "resolve_emphasis",
    "strip_markup",
    "token_emphasis_mask",
    "validate_spans",
]
