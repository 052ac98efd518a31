"""AutoPASTA: the model-named sentence is emphasised; nothing usable -> a logged, unsteered fallback."""

from __future__ import annotations

import logging

import pytest

from attnsteer.context import AutoPastaConfig, ContextError, autopasta_generate, pick_sentences, prepare_context
from tests.context.conftest import CONTEXT, QUERY

NORMANS = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
           "in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, "
           "under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")


def test_pick_sentences_by_word_overlap():
    config = AutoPastaConfig(num_sentences=1)
    spans = pick_sentences(CONTEXT, "\nShe is a nurse who works at the hospital.\nMore", config)
    assert [CONTEXT[s.start : s.end] for s in spans] == ["She is a nurse who works at the hospital."]
    two = pick_sentences(CONTEXT, "the city of Paris; a software engineer", AutoPastaConfig(num_sentences=2,
                                                                                              min_overlap=0.3))
    assert [CONTEXT[s.start : s.end] for s in two] == [  # overlaps 3/5 and 2/5 of the named words, best first
        "The Eiffel Tower is located in the city of Paris, the capital of France.",
        "He is a software engineer in Seattle."]
    assert pick_sentences(CONTEXT, "zebra quantum", config) == []
    assert pick_sentences(CONTEXT, "   ", config) == []


def test_fallback_is_logged_and_answers_unsteered(tiny_steerer, caplog):
    # A random tiny model names nothing of the context: the answer is the plain one.
    config = AutoPastaConfig(min_overlap=1.0, extraction_tokens=4)
    with caplog.at_level(logging.WARNING, logger="attnsteer.context.autopasta"):
        answer = autopasta_generate(tiny_steerer, CONTEXT, QUERY, max_new_tokens=4, config=config)
    assert answer.fell_back and answer.sentences == ()
    assert "named no sentence" in caplog.text
    assert answer.text == prepare_context(tiny_steerer, CONTEXT, "plain").generate(QUERY, max_new_tokens=4)


def test_named_sentence_is_emphasised(embedded_steerer):
    answer = autopasta_generate(embedded_steerer, NORMANS, "\n\nQuestion: Who was the Norse leader?\nAnswer:",
                                max_new_tokens=4, extraction_query="Who was the Norse leader?")
    assert not answer.fell_back and len(answer.sentences) == 1 and answer.sentences[0] in NORMANS
    steered = prepare_context(embedded_steerer, NORMANS, "spans", emphasize=list(answer.sentences))
    assert answer.text == steered.generate("\n\nQuestion: Who was the Norse leader?\nAnswer:", max_new_tokens=4)


@pytest.mark.parametrize(("fields", "message"), [
    ({"extraction_prompt": "no placeholder"}, "must contain '{query}'"),
    ({"num_sentences": 0}, "num_sentences must be a positive integer"),
    ({"min_overlap": 0.0}, r"min_overlap must be in \(0, 1\]"),
])
def test_bad_settings(fields, message):
    with pytest.raises(ContextError, match=message):
        AutoPastaConfig(**fields)


def test_empty_query(tiny_steerer):
    with pytest.raises(ContextError, match="query is empty"):
        autopasta_generate(tiny_steerer, CONTEXT, " ")
