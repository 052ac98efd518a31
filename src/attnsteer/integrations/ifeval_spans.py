"""IFEval instruction spans: the text of a prompt that its instruction-free version lacks.

`ifeval_with_prompt_without_instruction.jsonl` pairs each IFEval prompt with
`prompt_without_instruction`, the same request with its constraints removed ("Write a resume ...
Make sure to include at least 12 placeholders ..." -> "Write a resume ..."). A word-level diff of
the two gives the instruction sentences as character spans of the prompt; those are what the
`instruction` emphasis rule steers towards. Pure Python (difflib).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsteer.errors import SpanError
from attnsteer.spans import CharSpan, merge_spans

_WORD = re.compile(r"\S+")
IFEVAL_FIELDS = ("key", "prompt", "instruction_id_list", "kwargs")
REQUIRED_FIELDS = (*IFEVAL_FIELDS, "prompt_without_instruction")


def instruction_spans(prompt: str, prompt_without_instruction: str) -> list[CharSpan]:
    """Character spans of `prompt` whose words are missing from (or changed in) the instruction-free prompt.

    Runs of words are compared exactly (white space ignored); each unmatched run of prompt words is
    one span, from its first word's start to its last word's end. Empty when nothing was removed.
    """
    words = list(_WORD.finditer(prompt))
    kept = _WORD.findall(prompt_without_instruction)
    matcher = difflib.SequenceMatcher(None, [word.group() for word in words], kept, autojunk=False)
    spans = [
        CharSpan(words[first].start(), words[last - 1].end())
        for tag, first, last, _, _ in matcher.get_opcodes()
        if tag in ("replace", "delete") and last > first
    ]
    return merge_spans(spans)


@dataclass
class IfevalSpans:
    """IFEval records with their instruction spans, and the records skipped (key, reason)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    spans: list[list[CharSpan]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for _, reason in self.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        detail = "; ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        return f"{len(self.records)} records with an instruction span, {len(self.skipped)} skipped" + (
            f" ({detail})" if detail else ""
        )


def read_ifeval_records(path: str | Path, fields: tuple[str, ...] = REQUIRED_FIELDS) -> list[dict[str, Any]]:
    """The JSONL records of an IFEval file; a record missing one of `fields` raises, naming line and field."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            missing = [name for name in fields if name not in record]
            if missing:
                raise SpanError(f"{path}: line {line_number} lacks the field(s) {missing}; "
                                f"each record needs {', '.join(fields)}")
            records.append(record)
    return records


def load_ifeval_spans(path: str | Path) -> IfevalSpans:
    """Instruction spans for every record; records where no usable span is found are skipped with a reason.

    Skipped: nothing removed (the two prompts have the same words), or no words in common (the whole
    prompt would be "the instruction", which steers nothing in particular).
    """
    result = IfevalSpans()
    for record in read_ifeval_records(path):
        spans = instruction_spans(record["prompt"], record["prompt_without_instruction"])
        reason = skip_reason(record["prompt"], spans)
        if reason:
            result.skipped.append((record["key"], reason))
            continue
        result.records.append(record)
        result.spans.append(spans)
    return result


def skip_reason(prompt: str, spans: list[CharSpan]) -> str | None:
    """Why `spans` are no usable instruction span of `prompt` (None when they are)."""
    if not spans:
        return "with nothing removed"
    words = [match.span() for match in _WORD.finditer(prompt)]
    if len(spans) == 1 and spans[0].start == words[0][0] and spans[0].end == words[-1][1]:
        return "sharing no words with prompt_without_instruction"
    return None
