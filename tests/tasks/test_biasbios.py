from __future__ import annotations

import pytest

from attnsteer.tasks import TaskDataError
from attnsteer.tasks.biasbios import BiasBios
from attnsteer.tasks.bios import packaged_occupations
from tests.tasks.conftest import USER_BIOS


@pytest.fixture(scope="module")
def task():
    return BiasBios()


def test_split_sizes(task):
    assert [len(task.examples(split)) for split in ("train", "valid", "test")] == [40, 40, 200]
    assert [example.id for example in task.examples("test", limit=3)] == ["biasbios/94", "biasbios/187", "biasbios/151"]


def test_prompt_emphasis_and_candidates(task):
    for example in task.examples("test"):
        name, occupation = example.reference["name"], example.reference["occupation"]
        assert example.prompt.endswith(f"\n{name}'s occupation is")
        assert example.emphasised()[0] in (f"{name} is a {occupation}.", f"{name} is an {occupation}.")
        assert example.emphasis[0].start == 0
        assert example.candidates == tuple(" " + o for o in packaged_occupations())
        assert example.candidates[example.gold] == example.answer == " " + occupation


def test_metrics_normalised_and_summed(task):
    example = task.examples("test", limit=1)[0]
    logprobs = [(-100.0, 1)] * len(example.candidates)
    logprobs[example.gold] = (-6.0, 3)  # mean -2: best normalised
    other = (example.gold + 1) % len(example.candidates)
    logprobs[other] = (-5.0, 1)  # sum -5: best raw sum
    assert task.score_metrics(example, logprobs) == {"accuracy": 1.0, "accuracy_sum": 0.0}
    logprobs[other] = (-1.0, 1)
    assert task.score_metrics(example, logprobs) == {"accuracy": 0.0, "accuracy_sum": 0.0}
    with pytest.raises(TaskDataError, match=">= 1 token"):
        task.score_metrics(example, [(-1.0, 0)] * len(example.candidates))
    result = task.aggregate([{"accuracy": 1.0, "accuracy_sum": 0.0}, {"accuracy": 0.0, "accuracy_sum": 0.0}])
    assert result == {"accuracy": 50.0, "accuracy_sum": 0.0, "average": 50.0}


def test_user_file_candidates_are_the_28_plus_new_occupations(write_bios):
    task = BiasBios(write_bios(USER_BIOS))
    assert len(task.examples("train")) == len(task.examples("valid")) == 1
    examples = task.examples("train") + task.examples("valid") + task.examples("test")
    assert len(examples) == 5
    occupations = sorted({*packaged_occupations(), "astronaut"})
    for example in examples:
        assert example.candidates == tuple(" " + o for o in occupations)
        assert example.candidates[example.gold] == " " + example.reference["occupation"]
    by_id = {example.id: example for example in examples}
    assert by_id["biasbios/1"].emphasised() == ["Bo Li is an astronaut."]
    assert by_id["biasbios/2"].emphasised() == ["Cy Doe is a software_engineer"]
