"""Properties every registered task's examples must have: spans, splits, stability."""

from __future__ import annotations

import pytest

from attnsteer.tasks import Example, get_task, task_names
from attnsteer.tasks.base import SPLITS


@pytest.fixture(scope="module", params=["counterfact", "biasbios", "json_format", "pronoun_change", "squad", "gsm8k"])
def task(request):
    return get_task(request.param)()


def test_all_tasks_are_registered():
    assert task_names() == ["biasbios", "counterfact", "gsm8k", "json_format", "pronoun_change", "squad"]


def test_emphasis_spans_are_non_empty_and_inside_the_prompt(task):
    for split in SPLITS:
        for example in task.examples(split):
            assert isinstance(example, Example)
            assert example.emphasis
            for span in example.emphasis:
                assert 0 <= span.start < span.end <= len(example.prompt)
                assert example.prompt[span.start : span.end].strip()
            assert example.id.startswith(f"{task.name}/")


def test_splits_are_disjoint_and_ids_unique(task):
    ids = {split: [example.id for example in task.examples(split)] for split in SPLITS}
    for split in SPLITS:
        assert len(ids[split]) == len(set(ids[split]))
    assert not set(ids["train"]) & set(ids["valid"])
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["valid"]) & set(ids["test"])


def test_examples_are_stable_across_instances(task):
    again = get_task(task.name)()
    for split in SPLITS:
        assert task.examples(split) == again.examples(split)


def test_kinds_and_metric_names(task):
    for example in task.examples("valid", limit=3):
        if example.kind == "score":
            assert example.candidates and all(c.startswith(" ") for c in example.candidates)
            assert 0 <= example.gold < len(example.candidates)
        else:
            assert example.max_new_tokens > 0
        assert example.answer.startswith(" ")
    assert set(task.primary_metrics) <= set(task.metrics)
    assert set(task.percent_metrics) <= set(task.metrics)


def test_limit_takes_the_first_records(task):
    full = task.examples("test")
    limited = task.examples("test", limit=2)
    assert limited == full[: len(limited)]
    assert task.examples("test", limit=0) == []
