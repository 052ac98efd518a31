"""`ProfileConfig`: what a profiling run does, as one frozen dataclass validated on creation.

The Python API (`profile_heads`) and the CLI (`attnsteer profile`) both build one; it round-trips
through JSON (`to_dict` / `from_dict`), so a run's settings can be stored next to its results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from attnsteer.errors import AttnsteerError
from attnsteer.profiling.methods import get_profile_method
from attnsteer.profiling.selection import DEFAULT_K_GRID, RULES, SelectionError
from attnsteer.steering.config import SteeringConfig
from attnsteer.tasks import get_task

DEFAULT_TASKS = ("counterfact", "biasbios", "json_format", "pronoun_change")


class ProfileInputError(AttnsteerError):
    """Profiling settings that cannot work (no tasks, bad counts, unknown fields)."""


@dataclass(frozen=True)
class ProfileConfig:
    """A profiling run.

    tasks: registered task names; each contributes `n_train` train items (fewer if its split is smaller).
    method: a registered profiling method ("exhaustive", "coarse-to-fine", "gradient").
    select: how the tasks' top-k heads combine: "intersection", "union", or "task" (`select_task`'s alone).
    top_k: k per task; else `num_heads`: the smallest k giving that many heads; else the k in `k_grid`
        whose set improves the most valid items (`n_valid` per task).
    steering: alpha and mode while profiling.
    top_layers: coarse-to-fine: how many best layers get per-head scores.
    chat: each task prompt goes through the tokenizer's chat template (as `attnsteer eval --chat`), so a
        chat model is profiled on what it reads when used as one.
    """

    tasks: tuple[str, ...] = DEFAULT_TASKS
    n_train: int = 50
    method: str = "exhaustive"
    select: str = "intersection"
    top_k: int | None = None
    num_heads: int | None = None
    select_task: str | None = None
    k_grid: tuple[int, ...] = DEFAULT_K_GRID
    n_valid: int = 20
    steering: SteeringConfig = field(default_factory=SteeringConfig)
    top_layers: int = 3
    chat: bool = False

    def __post_init__(self) -> None:
        for name in ("tasks", "k_grid"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ProfileInputError(f"{name} must be a list, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        self._check_tasks_and_method()
        self._check_counts()
        self._check_selection()

    def _check_tasks_and_method(self) -> None:
        if not self.tasks:
            raise ProfileInputError("give at least one task to profile")
        for task in self.tasks:
            get_task(task)  # unknown names raise with the allowed ones
        get_profile_method(self.method)
        if not isinstance(self.chat, bool):
            raise ProfileInputError(f"chat must be True or False, got {self.chat!r}")
        if not isinstance(self.steering, SteeringConfig):
            raise ProfileInputError(f"steering must be a SteeringConfig, got {self.steering!r}")

    def _check_counts(self) -> None:
        for name in ("n_train", "n_valid", "top_layers"):
            _check_count(name, getattr(self, name))
        if not self.k_grid or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.k_grid):
            raise ProfileInputError(f"k_grid must be a non-empty list of integers >= 1, got {list(self.k_grid)}")

    def _check_selection(self) -> None:
        if self.select not in RULES:
            raise SelectionError(f"unknown selection rule {self.select!r}; choose one of {', '.join(RULES)}")
        if self.select == "task" and self.select_task not in self.tasks:
            raise SelectionError(f"--select task needs --select-task, one of the profiled tasks {list(self.tasks)}")
        if self.top_k is not None and self.num_heads is not None:
            raise SelectionError("give --top-k or --num-heads, not both")
        for name, flag in (("top_k", "--top-k"), ("num_heads", "--num-heads")):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SelectionError(f"{flag} must be >= 1, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: lists for the tuples, the steering config as a dict."""
        data = asdict(self)
        data.update(tasks=list(self.tasks), k_grid=list(self.k_grid), steering=self.steering.to_dict())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileConfig:
        """The inverse of `to_dict`; unknown fields are an error naming them."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ProfileInputError(f"unknown ProfileConfig fields {unknown}; allowed: {', '.join(allowed)}")
        values = dict(data)
        if isinstance(values.get("steering"), dict):
            values["steering"] = SteeringConfig.from_dict(values["steering"])
        return cls(**values)


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileInputError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ProfileInputError(f"{name} must be >= 1, got {value}")
