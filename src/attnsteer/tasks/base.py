"""What every evaluation task is: examples with emphasised spans, fixed seeded splits, metrics.

A task turns records (the packaged data or a user's file) into :class:`Example` objects; a runner
elsewhere turns examples into model calls and hands the results back to ``score_metrics`` /
``generation_metrics``. Nothing here imports torch or transformers.

Splits are fixed: the record list is shuffled with ``random.Random(0).shuffle(records)`` and cut
into train / valid / test. The packaged data uses fixed sizes per task (``packaged_split_sizes``);
a user's file gives train and valid 20% of the records each (rounded down, at least 1 each when
there are 3 or more records) and test the rest.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from attnsteer.errors import AttnsteerError
from attnsteer.spans import CharSpan

Split = Literal["train", "valid", "test"]
SPLITS: tuple[str, ...] = get_args(Split)
SPLIT_SEED = 0
USER_SPLIT_FRACTION = 0.2


class TaskDataError(AttnsteerError):
    """A task's data file, split name, limit, or a result handed back to a task is malformed."""


@dataclass(frozen=True)
class Example:
    """One prompt of a task, with the character spans of ``prompt`` to emphasise.

    ``kind == "score"``: the runner scores each of ``candidates`` as a continuation of ``prompt``.
    ``kind == "generate"``: the runner generates up to ``max_new_tokens`` tokens after ``prompt``.
    ``answer`` is the gold text to append after the prompt when the example is a few-shot demo.
    """

    id: str
    kind: Literal["score", "generate"]
    prompt: str
    emphasis: tuple[CharSpan, ...]
    answer: str
    candidates: tuple[str, ...] = ()
    gold: int = -1
    max_new_tokens: int = 0
    reference: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("score", "generate"):
            raise TaskDataError(f"example {self.id}: kind must be 'score' or 'generate', got {self.kind!r}")
        if not self.emphasis or any(span.end > len(self.prompt) for span in self.emphasis):
            raise TaskDataError(f"example {self.id}: emphasis {self.emphasis!r} is empty or outside the prompt")
        if self.kind == "score" and not (self.candidates and -1 <= self.gold < len(self.candidates)):
            raise TaskDataError(f"example {self.id}: a score example needs candidates and -1 <= gold < their number")
        if self.kind == "generate" and self.max_new_tokens <= 0:
            raise TaskDataError(f"example {self.id}: a generate example needs max_new_tokens > 0")

    def emphasised(self) -> list[str]:
        """The emphasised texts, ``prompt[span.start:span.end]`` for each span."""
        return [self.prompt[span.start : span.end] for span in self.emphasis]


def split_sizes(count: int, fixed: tuple[int, int] | None) -> tuple[int, int]:
    """(train, valid) sizes: ``fixed`` for the packaged data, 20% each for a user file."""
    if fixed is not None:
        return fixed
    share = int(count * USER_SPLIT_FRACTION)
    return (max(1, share), max(1, share)) if count >= 3 else (0, 0)


def read_data_text(data_file: str | Path | None, packaged_name: str) -> tuple[str, str]:
    """(text, label for messages) of a user file, or of ``tasks/data/<packaged_name>`` when None."""
    if data_file is None:
        return files("attnsteer.tasks").joinpath("data", packaged_name).read_text(encoding="utf-8"), packaged_name
    path = Path(data_file)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as err:
        raise TaskDataError(f"cannot read task data file {str(path)!r}: {err}") from err


def parse_json_list(text: str, label: str) -> list[Any]:
    """A JSON file holding a list of records."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{label}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from err
    if not isinstance(value, list):
        raise TaskDataError(f"{label}: expected a JSON list of records, got {type(value).__name__}")
    return value


def parse_jsonl(text: str, label: str) -> list[tuple[int, Any]]:
    """(1-based line number, record) for each non-blank line of a JSON Lines file."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise TaskDataError(f"{label} line {number}: invalid JSON ({err.msg} at column {err.colno})") from err
    return records


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


def require(record: Any, key: str, kind: type, where: str, path: str | None = None) -> Any:
    """``record[key]`` checked to be of type ``kind`` (and non-empty for strings).

    ``where`` names the record ("file line 3"), ``path`` the field in messages (default ``key``).
    """
    label = path or key
    if not isinstance(record, dict):
        raise TaskDataError(f"{where}: expected a JSON object holding {label!r}, got {type(record).__name__}")
    if key not in record:
        raise TaskDataError(f"{where}: field {label!r} is missing")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TaskDataError(f"{where}: field {label!r} must be {_TYPE_NAMES[kind]}, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise TaskDataError(f"{where}: field {label!r} is empty")
    return value


class Task(ABC):
    """An evaluation task: data, fixed splits, prompt builders and metrics.

    Subclasses set the class attributes and implement ``load_records`` and ``build_examples``.
    ``data_file=None`` uses the packaged data; otherwise the file is read and validated now, and
    errors name the record (index or line) and the field.
    """

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    primary_metrics: ClassVar[tuple[str, ...]]
    percent_metrics: ClassVar[frozenset[str]] = frozenset()
    packaged_split_sizes: ClassVar[tuple[int, int]]

    def __init__(self, data_file: str | Path | None = None) -> None:
        self.data_file = None if data_file is None else Path(data_file)
        records = self.load_records(data_file)
        random.Random(SPLIT_SEED).shuffle(records)
        train, valid = split_sizes(len(records), self.packaged_split_sizes if data_file is None else None)
        self._splits = {"train": records[:train], "valid": records[train : train + valid],
                        "test": records[train + valid :]}

    @abstractmethod
    def load_records(self, data_file: str | Path | None) -> list[Any]:
        """The validated records in file order (the packaged data when ``data_file`` is None)."""

    @abstractmethod
    def build_examples(self, record: Any) -> list[Example]:
        """The examples of one record."""

    def examples(self, split: Split, limit: int | None = None) -> list[Example]:
        """The examples of the first ``limit`` records (all when None) of ``split``, in split order."""
        if split not in SPLITS:
            raise TaskDataError(f"unknown split {split!r}; choose one of {', '.join(map(repr, SPLITS))}")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise TaskDataError(f"limit must be None or an int >= 0, got {limit!r}")
        records = self._splits[split] if limit is None else self._splits[split][:limit]
        return [example for record in records for example in self.build_examples(record)]

    def score_metrics(self, example: Example, logprobs: Sequence[tuple[float, int]]) -> dict[str, float]:
        """Metrics of a score example from each candidate's (sum log-prob in nats, number of tokens)."""
        raise TaskDataError(f"task {self.name!r} has no score examples (got {example.id})")

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        """Metrics of a generate example from the generated text (the prompt not included)."""
        raise TaskDataError(f"task {self.name!r} has no generate examples (got {example.id})")

    def aggregate(self, per_example: Sequence[Mapping[str, float]]) -> dict[str, float]:
        """Mean of each metric over the examples reporting it (x100 for ``percent_metrics``).

        Metrics come in ``metrics`` order; ``average`` (the mean of ``primary_metrics``) is added
        when every primary metric was reported.
        """
        values: dict[str, list[float]] = {}
        for row in per_example:
            for metric, value in row.items():
                values.setdefault(metric, []).append(float(value))
        order = [*self.metrics, *sorted(set(values) - set(self.metrics))]
        result = {}
        for metric in order:
            if metric in values:
                scale = 100.0 if metric in self.percent_metrics else 1.0
                result[metric] = scale * sum(values[metric]) / len(values[metric])
        if self.primary_metrics and all(metric in result for metric in self.primary_metrics):
            result["average"] = sum(result[metric] for metric in self.primary_metrics) / len(self.primary_metrics)
        return result


def check_logprobs(example: Example, logprobs: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """The (sum log-prob, token count) pairs, one per candidate with at least one token."""
    pairs = [(float(total), int(count)) for total, count in logprobs]
    if len(pairs) != len(example.candidates):
        raise TaskDataError(
            f"example {example.id}: got {len(pairs)} log-probs for {len(example.candidates)} candidates"
        )
    if any(count <= 0 for _, count in pairs):
        raise TaskDataError(f"example {example.id}: every candidate must have >= 1 token, got {pairs}")
    return pairs
