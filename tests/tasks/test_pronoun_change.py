from __future__ import annotations

import pytest

from attnsteer.tasks.pronoun_change import PronounChange
from attnsteer.tasks.text_metrics import has_gendered_pronoun
from tests.tasks.conftest import USER_BIOS


@pytest.fixture(scope="module")
def task():
    return PronounChange()


def test_split_sizes_and_prompt(task):
    examples = task.examples("test")
    assert len(examples) == 200 and [len(task.examples(s)) for s in ("train", "valid")] == [40, 40]
    for example in examples:
        instruction = (
            "Substitute 'she' and 'he' with 'they' and generate the occupation of "
            f"{example.reference['name']} after changing pronouns."
        )
        assert example.prompt.endswith("\n" + instruction)
        assert example.emphasised() == [instruction]
        assert (example.kind, example.max_new_tokens) == ("generate", 48)
        assert not has_gendered_pronoun(example.answer)


def test_demo_answer_is_the_first_two_sentences_neutralised(write_bios):
    task = PronounChange(write_bios(USER_BIOS))
    by_id = {example.id: example for split in ("train", "valid", "test") for example in task.examples(split)}
    # only is/was/has/does are made plural: "They works" is a known limit of the heuristic
    assert by_id["pronoun_change/0"].answer == " Ada Park is a nurse. They works nights."
    assert by_id["pronoun_change/1"].answer == " Bo Li is an astronaut. They flew twice."


@pytest.mark.parametrize(
    ("output", "first", "whole"),
    [
        (" They are a nurse. They work nights.", 1.0, 1.0),
        (" They are a nurse. She works nights.", 1.0, 0.0),
        (" She is a nurse. They work nights.", 0.0, 0.0),
        ("\n\nThe theme: they are a nurse", 1.0, 1.0),
        (" They are a nurse\nHis patients", 1.0, 0.0),
        (" Their job: nurse. Ask HIM.", 1.0, 0.0),
        ("", 0.0, 0.0),
        ("   \n", 0.0, 0.0),
        (". They", 0.0, 1.0),
    ],
)
def test_metrics(task, output, first, whole):
    example = task.examples("test", limit=1)[0]
    assert task.generation_metrics(example, output) == {"accuracy": first, "all_changed_accuracy": whole}
