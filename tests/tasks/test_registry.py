from __future__ import annotations

import pytest

from attnsteer.errors import AttnsteerError
from attnsteer.tasks import Task, UnknownTaskError, get_task, register_task, task_names
from attnsteer.tasks.biasbios import BiasBios
from attnsteer.tasks.counterfact import CounterFact


def test_names_map_to_classes():
    assert get_task("counterfact") is CounterFact
    assert get_task("biasbios") is BiasBios
    assert all(get_task(name).name == name for name in task_names())


def test_unknown_name_lists_names_and_suggests_the_closest():
    with pytest.raises(UnknownTaskError, match=r"unknown task 'json-format'.*'biasbios'.*did you mean 'json_format'"):
        get_task("json-format")
    with pytest.raises(AttnsteerError, match="choose one of") as info:
        get_task("zzz")
    assert "did you mean" not in str(info.value)


def test_registering_a_taken_name_fails_and_reregistering_is_harmless():
    class Other(Task):
        name = "counterfact"

    with pytest.raises(ValueError, match="already registered"):
        register_task(Other)
    assert register_task(CounterFact) is CounterFact
    assert get_task("counterfact") is CounterFact


def test_name_must_be_an_identifier():
    class Bad(Task):
        name = "bad name"

    with pytest.raises(ValueError, match="identifier"):
        register_task(Bad)
    assert "bad name" not in task_names()
