"""The one registry of evaluation tasks: a task's ``name`` class attribute is its only name."""

from __future__ import annotations

from typing import TypeVar

from attnsteer.errors import AttnsteerError
from attnsteer.registry import Registry
from attnsteer.tasks.base import Task

TaskType = TypeVar("TaskType", bound=type[Task])


class UnknownTaskError(AttnsteerError):
    """A task name that is not registered."""


_TASKS: Registry[type[Task]] = Registry("task", UnknownTaskError)


def register_task(cls: TaskType) -> TaskType:
    """Class decorator: register ``cls`` under ``cls.name``; a name taken by another class is an error."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"task class {cls.__qualname__} needs a `name` that is an identifier, got {name!r}")
    _TASKS.register(name, cls)
    return cls


def task_names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_TASKS.names())


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``; an unknown name names the allowed ones and the closest."""
    return _TASKS.get(name)
