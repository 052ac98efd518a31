from __future__ import annotations

import pytest

from attnsteer.errors import AttnsteerError
from attnsteer.integrations import EmphasisRuleError, parse_emphasis_rule
from attnsteer.integrations.emphasis_rules import sentence_spans

PROMPT = 'The tower is in Paris. It moved to "Rome!" Where is the tower?\nAnswer:'


def texts(text, spans):
    return [text[span.start : span.end] for span in spans]


def test_sentences_split_after_end_marks_and_at_line_breaks():
    assert texts(PROMPT, sentence_spans(PROMPT)) == [
        "The tower is in Paris.", 'It moved to "Rome!"', "Where is the tower?", "Answer:"]
    assert sentence_spans("   ") == []


@pytest.mark.parametrize("rule, expected", [
    ("none", []),
    (None, []),  # lm-eval turns the argument `none` into None
    ("first_sentence", ["The tower is in Paris."]),
    ("last_sentence", ["Answer:"]),
    ("regex:tower", ["tower", "tower"]),
    ("regex:moved to (\"\\w+)", ['"Rome']),
    ("regex:Berlin", []),
])
def test_rules_on_hand_made_prompt(rule, expected):
    assert texts(PROMPT, parse_emphasis_rule(rule).spans(PROMPT)) == expected


def test_none_does_not_steer_the_others_do():
    assert not parse_emphasis_rule("none").steers
    assert all(parse_emphasis_rule(rule).steers for rule in ("first_sentence", "last_sentence", "regex:a",
                                                                "instruction"))


def test_instruction_rule_spans_the_removed_text_where_the_prompt_sits_in_the_context():
    doc = {"prompt": "Write a poem about cats. Use no commas. End with the word love.",
           "prompt_without_instruction": "Write a poem about cats."}
    context = "Question: " + doc["prompt"]
    spans = parse_emphasis_rule("instruction").spans(context, doc)
    assert texts(context, spans) == ["Use no commas. End with the word love."]


def test_instruction_rule_outside_the_context_gives_no_span():
    doc = {"prompt": "Write a poem. Use no commas.", "prompt_without_instruction": "Write a poem."}
    assert parse_emphasis_rule("instruction").spans("something else entirely", doc) == []


def test_instruction_rule_needs_ifeval_fields():
    with pytest.raises(EmphasisRuleError, match="prompt_without_instruction.*fields \\['question'\\]"):
        parse_emphasis_rule("instruction").spans("Q?", {"question": "Q?"})


@pytest.mark.parametrize("rule, message", [
    ("middle_sentence", "unknown emphasis rule 'middle_sentence'; allowed: none, first_sentence"),
    ("regex:", "needs a pattern"),
    ("regex:(unclosed", "invalid regular expression"),
])
def test_bad_rules_raise_naming_the_value(rule, message):
    with pytest.raises(EmphasisRuleError, match=message) as caught:
        parse_emphasis_rule(rule)
    assert isinstance(caught.value, AttnsteerError)


def test_instruction_rule_skips_a_prompt_sharing_no_words_with_its_stripped_version():
    doc = {"prompt": "Use no commas at all.", "prompt_without_instruction": "Something different."}
    assert parse_emphasis_rule("instruction").spans(doc["prompt"], doc) == []
