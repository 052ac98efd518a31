from __future__ import annotations

import pytest

from attnsteer.errors import AttnsteerError
from attnsteer.spans import CharSpan
from attnsteer.tasks import Example, TaskDataError, get_task
from attnsteer.tasks.base import split_sizes


def test_task_data_error_is_an_attnsteer_error():
    assert issubclass(TaskDataError, AttnsteerError) and issubclass(TaskDataError, ValueError)


@pytest.mark.parametrize(
    ("count", "sizes"), [(1, (0, 0)), (2, (0, 0)), (3, (1, 1)), (9, (1, 1)), (10, (2, 2)), (101, (20, 20))]
)
def test_user_split_sizes(count, sizes):
    assert split_sizes(count, None) == sizes
    assert split_sizes(count, (40, 40)) == (40, 40)


def test_example_validation():
    span = (CharSpan(0, 2),)
    Example(id="x", kind="score", prompt="ab", emphasis=span, answer=" a", candidates=(" a",), gold=0)
    with pytest.raises(TaskDataError, match="emphasis"):
        Example(id="x", kind="generate", prompt="a", emphasis=span, answer=" a", max_new_tokens=1)
    with pytest.raises(TaskDataError, match="emphasis"):
        Example(id="x", kind="generate", prompt="ab", emphasis=(), answer=" a", max_new_tokens=1)
    with pytest.raises(TaskDataError, match="candidates"):
        Example(id="x", kind="score", prompt="ab", emphasis=span, answer=" a", candidates=(" a",), gold=1)
    with pytest.raises(TaskDataError, match="max_new_tokens"):
        Example(id="x", kind="generate", prompt="ab", emphasis=span, answer=" a")
    with pytest.raises(TaskDataError, match="kind"):
        Example(id="x", kind="other", prompt="ab", emphasis=span, answer=" a")  # type: ignore[arg-type]


def test_split_and_limit_are_checked():
    task = get_task("biasbios")()
    with pytest.raises(TaskDataError, match="unknown split 'dev'; choose one of 'train', 'valid', 'test'"):
        task.examples("dev")  # type: ignore[arg-type]
    with pytest.raises(TaskDataError, match="limit"):
        task.examples("test", limit=-1)
    assert len(task.examples("test", limit=1000)) == 200


def test_wrong_kind_of_result_is_an_error():
    task = get_task("json_format")()
    example = task.examples("test", limit=1)[0]
    with pytest.raises(TaskDataError, match="has no score examples"):
        task.score_metrics(example, [])
    counterfact = get_task("counterfact")()
    with pytest.raises(TaskDataError, match="has no generate examples"):
        get_task("biasbios")().generation_metrics(counterfact.examples("test", limit=1)[0], "text")
