"""Emphasis rules: which part of an lm-eval task's prompt (its context) is emphasised.

Rules (the `emphasis=` model argument of the lm-eval adapter):
  none            nothing: the plain model
  first_sentence  the context's first sentence
  last_sentence   the context's last sentence
  regex:<pattern> every match of the Python regex (its group 1 where the pattern has groups)
  instruction     IFEval: the prompt's instruction sentences, i.e. the text `prompt_without_instruction`
                  lacks (the document must carry `prompt` and `prompt_without_instruction`)

Sentences are split after `.`, `!` or `?` (closing quotes/brackets included) followed by white space,
and at line breaks. Under lm-eval's --apply_chat_template the adapter gives a rule the request's own
user turn as the context, not the templated prompt. Pure Python: no torch, no lm-eval.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attnsteer.errors import SpanError
from attnsteer.integrations.ifeval_spans import instruction_spans, skip_reason
from attnsteer.spans import CharSpan, merge_spans

RULE_NAMES = ("none", "first_sentence", "last_sentence", "regex:<pattern>", "instruction")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|\n")


class EmphasisRuleError(SpanError):
    """An emphasis rule is unknown or malformed, or cannot apply to a task's documents."""


@dataclass(frozen=True)
class EmphasisRule:
    """A parsed emphasis rule. `pattern` is set for `regex` only."""

    kind: str
    pattern: re.Pattern[str] | None = None

    @property
    def steers(self) -> bool:
        """False for `none` (the plain model)."""
        return self.kind != "none"

    def spans(self, context: str, doc: Mapping[str, Any] | None = None) -> list[CharSpan]:
        """The emphasised character spans of `context` (sorted, merged; empty when nothing matches)."""
        if self.kind == "none":
            return []
        if self.kind in ("first_sentence", "last_sentence"):
            sentences = sentence_spans(context)
            if not sentences:
                return []
            return [sentences[0] if self.kind == "first_sentence" else sentences[-1]]
        if self.kind == "regex":
            return _regex_spans(self.pattern, context)
        return _instruction_spans_in(context, doc)

    def __str__(self) -> str:
        return f"regex:{self.pattern.pattern}" if self.pattern is not None else self.kind


def parse_emphasis_rule(text: str | None) -> EmphasisRule:
    """Parse `none`, `first_sentence`, `last_sentence`, `regex:<pattern>` or `instruction`.

    None (lm-eval turns the argument `none` into None) means `none`.
    """
    if text is None:
        return EmphasisRule("none")
    text = str(text).strip()
    if text.startswith("regex:"):
        source = text[len("regex:") :]
        if not source:
            raise EmphasisRuleError("emphasis rule 'regex:' needs a pattern after the colon, e.g. 'regex:Answer.*'")
        try:
            return EmphasisRule("regex", re.compile(source))
        except re.error as error:
            raise EmphasisRuleError(f"emphasis rule {text!r}: invalid regular expression ({error})") from None
    if text in ("none", "first_sentence", "last_sentence", "instruction"):
        return EmphasisRule(text)
    raise EmphasisRuleError(f"unknown emphasis rule {text!r}; allowed: {', '.join(RULE_NAMES)}")


def sentence_spans(text: str) -> list[CharSpan]:
    """The sentences of `text` as character spans, without their surrounding white space."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append(_stripped(text, start, match.end()))
        start = match.end()
    spans.append(_stripped(text, start, len(text)))
    return [span for span in spans if span is not None]


def _stripped(text: str, start: int, end: int) -> CharSpan | None:
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    return CharSpan(start + left, start + right) if right > left else None


def _regex_spans(pattern: re.Pattern[str] | None, context: str) -> list[CharSpan]:
    assert pattern is not None
    group = 1 if pattern.groups else 0
    spans = []
    for match in pattern.finditer(context):
        start, end = match.span(group)
        if end > start:
            spans.append(CharSpan(start, end))
    return merge_spans(spans)


def _instruction_spans_in(context: str, doc: Mapping[str, Any] | None) -> list[CharSpan]:
    """IFEval instruction spans, shifted to where the document's prompt sits in `context`."""
    if doc is None or "prompt" not in doc or "prompt_without_instruction" not in doc:
        fields = sorted(doc) if doc is not None else []
        raise EmphasisRuleError(
            "emphasis rule 'instruction' needs documents with 'prompt' and 'prompt_without_instruction' "
            f"(IFEval with instructions removed, e.g. the task ifeval_local); this document has fields {fields}"
        )
    offset = context.find(doc["prompt"])
    if offset < 0:
        return []
    spans = instruction_spans(doc["prompt"], doc["prompt_without_instruction"])
    if skip_reason(doc["prompt"], spans):
        return []
    return [CharSpan(span.start + offset, span.end + offset) for span in spans]
