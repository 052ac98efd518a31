from __future__ import annotations

import json

import pytest

from attnsteer.tasks import TaskDataError
from attnsteer.tasks.gsm8k import Gsm8k, final_number


@pytest.fixture(scope="module")
def task():
    return Gsm8k()


def test_splits_and_prompt(task):
    assert [len(task.examples(split)) for split in ("train", "valid", "test")] == [100, 100, 1119]
    for example in task.examples("test", limit=5):
        end = example.reference["context_end"]
        assert example.prompt[:end] == f"Question: {example.reference['question']}\n"
        assert example.prompt[end:] == "Answer:"
        (asked,) = example.emphasised()
        assert example.reference["question"].endswith(asked)
        assert "<<" not in example.answer and example.answer.endswith(f"The answer is {example.reference['final']}.")


@pytest.mark.parametrize(("output", "number"), [
    (" 5 + 3 = 8. The answer is 8.", 8.0),
    (" She pays $1,200 in total.\nQuestion: 7 apples", 1200.0),
    (" -3.5 degrees", -3.5),
    (" no idea", None),
])
def test_final_number(output, number):
    assert final_number(output) == number


def test_accuracy(task):
    example = task.examples("test")[0]
    final = example.reference["final"]
    assert task.generation_metrics(example, f" so {final}.") == {"accuracy": 1.0}
    assert task.generation_metrics(example, f" {final} then 99999") == {"accuracy": 0.0}


def test_bad_files(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "no final"}) + "\n")
    with pytest.raises(TaskDataError, match="line 1: field 'answer' must end with '#### <number>'"):
        Gsm8k(path)
    path.write_text(json.dumps({"answer": "#### 3"}) + "\n")
    with pytest.raises(TaskDataError, match="line 1: field 'question' is missing"):
        Gsm8k(path)
