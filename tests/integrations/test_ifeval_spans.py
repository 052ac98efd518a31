from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from attnsteer.errors import SpanError
from attnsteer.integrations import instruction_spans, load_ifeval_spans
from attnsteer.integrations.lm_eval_tasks import TASK_DIR

PACKAGED = TASK_DIR / "data" / "ifeval_with_prompt_without_instruction.jsonl"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / PACKAGED.name


def test_every_shared_record_has_a_span_inside_its_prompt_or_is_reported():
    result = load_ifeval_spans(PACKAGED)
    assert len(result.records) + len(result.skipped) == 541
    assert len(result.skipped) == 2  # two records whose instruction-free prompt keeps every word
    assert result.summary() == "539 records with an instruction span, 2 skipped (2 with nothing removed)"
    for record, spans in zip(result.records, result.spans, strict=True):
        assert spans, record["key"]
        for span in spans:
            assert 0 <= span.start < span.end <= len(record["prompt"])
            assert record["prompt"][span.start : span.end].strip()
        # what remains outside the spans is (word for word, up to the changed words) the stripped prompt
        assert sum(len(span) for span in spans) < len(record["prompt"])


def test_first_records_spans_are_their_instructions():
    result = load_ifeval_spans(PACKAGED)
    first = result.records[0]
    assert [first["prompt"][s.start : s.end] for s in result.spans[0]][0] == "300+ word"
    second = result.records[1]
    assert [second["prompt"][s.start : s.end] for s in result.spans[1]] == [
        "You are not allowed to use any commas in your response."]


def test_packaged_copy_is_the_shared_file():
    if not SHARED.exists():
        pytest.skip(f"no shared data at {SHARED}")
    assert hashlib.sha256(PACKAGED.read_bytes()).hexdigest() == hashlib.sha256(SHARED.read_bytes()).hexdigest()


def test_instruction_spans_of_a_changed_word_and_a_removed_sentence():
    prompt = "Ask a question in English, and in all lowercase letters. Be brief."
    spans = instruction_spans(prompt, "Ask a question in English. Be brief.")
    assert [prompt[s.start : s.end] for s in spans] == ["English, and in all lowercase letters."]
    assert instruction_spans("Same words.", "Same  words.") == []


def test_a_record_missing_a_field_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"key": 1, "prompt": "p", "instruction_id_list": [], "kwargs": []}) + "\n")
    with pytest.raises(SpanError, match="line 1 lacks the field\\(s\\) \\['prompt_without_instruction'\\]"):
        load_ifeval_spans(path)
