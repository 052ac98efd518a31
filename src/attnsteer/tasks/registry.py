"""The one registry of evaluation tasks: a task's ``name`` class attribute is its only name."""

from __future__ import annotations

import difflib
from typing import TypeVar

from attnsteer.errors import AttnsteerError
from attnsteer.tasks.base import Task

TaskType = TypeVar("TaskType", bound=type[Task])

_TASKS: dict[str, type[Task]] = {}


class UnknownTaskError(AttnsteerError):
    """A task name that is not registered."""


def register_task(cls: TaskType) -> TaskType:
    """Class decorator: register ``cls`` under ``cls.name``; a name taken by another class is an error."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"task class {cls.__qualname__} needs a `name` that is an identifier, got {name!r}")
    other = _TASKS.get(name)
    same = other is not None and (other.__module__, other.__qualname__) == (cls.__module__, cls.__qualname__)
    if other is not None and not same:
        raise ValueError(f"task name {name!r} is already registered by {other.__module__}.{other.__qualname__}")
    _TASKS[name] = cls
    return cls


def task_names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_TASKS)


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``; an unknown name names the allowed ones and the closest."""
    if isinstance(name, str) and name in _TASKS:
        return _TASKS[name]
    close = difflib.get_close_matches(str(name), task_names(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownTaskError(f"unknown task {name!r}; choose one of {', '.join(map(repr, task_names()))}{hint}")
