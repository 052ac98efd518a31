from __future__ import annotations

import pytest

from attnsteer.tasks.json_format import JsonFormat, instruction_for


@pytest.fixture(scope="module")
def task():
    return JsonFormat()


@pytest.fixture(scope="module")
def example(task):
    return task.examples("test", limit=1)[0]


def test_split_sizes_and_prompt(task):
    examples = task.examples("test")
    assert len(examples) == 200 and [len(task.examples(s)) for s in ("train", "valid")] == [40, 40]
    for example in examples:
        name = example.reference["name"]
        instruction = (
            f"Answer the occupation of {name} and generate the answer as json format. Here is an example: "
            '{"name": , "occupation": ,}. Now generate the answer.'
        )
        assert instruction_for(name) == instruction
        assert example.prompt.endswith("\n" + instruction)
        assert example.emphasised() == [instruction]
        assert (example.kind, example.max_new_tokens) == ("generate", 32)
        assert example.answer == f' {{"name": "{name}", "occupation": "{example.reference["occupation"]}"}}'


def test_bio_tasks_share_bios_and_splits(task):
    from attnsteer.tasks.biasbios import BiasBios

    bias = BiasBios().examples("valid")
    mine = task.examples("valid")
    assert [e.id.split("/")[1] for e in bias] == [e.id.split("/")[1] for e in mine]
    assert all(b.prompt.split("\n")[0] == m.prompt.split("\n")[0] for b, m in zip(bias, mine, strict=True))


@pytest.mark.parametrize(
    ("output", "fmt", "pred"),
    [
        (' {"name": "X", "occupation": "GOLD"}', 1.0, 1.0),
        (' {"name": "X", "occupation": "senior GOLD"} and more text', 1.0, 1.0),
        ('Sure: {"name": "X", "occupation": "plumber"}', 1.0, 0.0),
        (' {"name": "X"}', 0.0, 0.0),
        (' {"name": "X", "occupation": 3}', 1.0, 0.0),
        (' {"name": , "occupation": ,}', 0.0, 0.0),
        (' {"name": "X", "occupation": "GOLD"', 0.0, 0.0),
        (' {"person": {"name": "X", "occupation": "GOLD"}}', 0.0, 0.0),
        (' {"name": {"first": "X"}, "occupation": "GOLD"}', 1.0, 1.0),
        (' {"name": , "occupation": ,} {"name": "X", "occupation": "GOLD"}', 1.0, 1.0),
        ("", 0.0, 0.0),
        ("The answer is GOLD.", 0.0, 0.0),
    ],
)
def test_metrics(task, example, output, fmt, pred):
    gold = example.reference["occupation"]
    metrics = task.generation_metrics(example, output.replace("GOLD", gold.upper()))
    assert metrics == {"format_accuracy": fmt, "prediction_accuracy": pred}
