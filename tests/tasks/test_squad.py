from __future__ import annotations

import json

import pytest

from attnsteer.tasks import TaskDataError
from attnsteer.tasks.squad import Squad, exact_match, f1_score, normalize_answer, prediction_text, sentence_spans


@pytest.fixture(scope="module")
def task():
    return Squad()


def test_splits_are_paragraphs_with_their_answerable_questions(task):
    counts = [len(task.examples(split)) for split in ("train", "valid", "test")]
    assert sum(counts) == 293  # the answerable questions of the two articles
    test = task.examples("test")
    paragraphs = {example.reference["paragraph"] for example in test}
    assert len(paragraphs) == 67 and not paragraphs & {e.reference["paragraph"] for e in task.examples("train")}


def test_prompt_context_and_oracle_sentence(task):
    for example in task.examples("test", limit=5):
        end = example.reference["context_end"]
        context, query = example.prompt[:end], example.prompt[end:]
        assert query == f"\n\nQuestion: {example.reference['question']}\nAnswer:"
        (sentence,) = example.emphasised()
        assert sentence in context and example.kind == "generate" and example.max_new_tokens == 16
        assert example.answer == " " + example.reference["answers"][0]


def test_official_normalisation_and_scores():
    assert normalize_answer("The  Norman-Conquest, of an ENGLAND!") == "normanconquest of england"
    assert exact_match("the France.", "France") == 1.0
    assert f1_score("in the 10th and 11th centuries", "10th and 11th centuries") == pytest.approx(8 / 9)
    assert f1_score("10th century", "10th and 11th centuries") == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert f1_score("", "France") == 0.0 and f1_score("Paris", "France") == 0.0


def test_metrics_take_the_best_gold_and_the_first_line(task):
    example = task.examples("test")[0]
    gold = example.reference["answers"][0]
    assert task.generation_metrics(example, f" {gold}\nQuestion: next") == {"exact_match": 1.0, "f1": 1.0}
    assert task.generation_metrics(example, "\n\n") == {"exact_match": 0.0, "f1": 0.0}
    assert prediction_text("\n  Rollo \nmore") == "Rollo"


def test_sentence_spans():
    text = "One. Two two!  Three?"
    assert [text[s.start : s.end] for s in sentence_spans(text)] == ["One.", "Two two!", "Three?"]


def test_bad_files_name_the_place(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q",
                                                                                    "answers": [{"text": 5}]}]}]}]}))
    with pytest.raises(TaskDataError, match=r"data\[0\].paragraphs\[0\].qas\[0\].answers\[0\]: field 'text'"):
        Squad(path)
    path.write_text('{"data": [}')
    with pytest.raises(TaskDataError, match="invalid JSON"):
        Squad(path)
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"is_impossible": True}]}]}]}))
    with pytest.raises(TaskDataError, match="no paragraph has an answerable question"):
        Squad(path)
