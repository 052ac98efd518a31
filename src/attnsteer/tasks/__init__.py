"""The PASTA paper's evaluation tasks: data, fixed seeded splits, prompts with emphasis, metrics.

Tasks: ``counterfact``, ``biasbios``, ``json_format``, ``pronoun_change``, and the LLMSteer paper's
``squad`` and ``gsm8k`` (one module each; importing this package registers them). Pure Python:
nothing here imports torch or transformers.
"""

from __future__ import annotations

from attnsteer.tasks import biasbios, counterfact, gsm8k, json_format, pronoun_change, squad  # noqa: F401  (register)
from attnsteer.tasks.base import Example, Split, Task, TaskDataError
from attnsteer.tasks.registry import UnknownTaskError, get_task, register_task, task_names

__all__ = [
    "Example",
    "Split",
    "Task",
    "TaskDataError",
    "UnknownTaskError",
    "get_task",
    "register_task",
    "task_names",
]
