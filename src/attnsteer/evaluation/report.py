"""Results as the paper's Table 1 (rows methods, columns task metrics, an average) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from attnsteer.evaluation.runner import EvalResult
from attnsteer.tasks import get_task


def results_table(results: Sequence[EvalResult]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per method, a column per task metric, then the average of the tasks'
    primary metrics (the paper averages its table's columns)."""
    tasks = list(dict.fromkeys(result.task for result in results))
    columns = [(task, metric) for task in tasks for metric in get_task(task).metrics]
    header = ["method", *[f"{task}/{metric}" for task, metric in columns], "average"]
    rows = []
    for method in dict.fromkeys(result.method for result in results):
        by_task = {result.task: result.metrics for result in results if result.method == method}
        cells = [_cell(by_task.get(task, {}).get(metric)) for task, metric in columns]
        rows.append([method, *cells, _cell(average_primary(by_task))])
    return header, rows


def average_primary(by_task: dict[str, dict[str, float]]) -> float | None:
    values = [metrics[name] for task, metrics in by_task.items() for name in get_task(task).primary_metrics
              if name in metrics]
    return mean(values) if values else None


HIDDEN_SETTINGS = ("method", "heads", "anchoring_version")  # not in the table's caption (the JSON has them)


def steering_summary(results: Sequence[EvalResult]) -> str:
    """The runs' steering settings, one entry per method that steers: "pasta: alpha 0.01, mode exclude;
    instaboost: boost 5.0" (head sets left out: see the JSON)."""
    settings: dict[str, str] = {}
    for result in results:
        steering = result.config.get("steering") or {}
        shown = [f"{key} {value}" for key, value in steering.items() if key not in HIDDEN_SETTINGS]
        if steering:
            settings.setdefault(steering["method"], f"{steering['method']}: {', '.join(shown)}")
    return "; ".join(settings.values())


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def results_json(results: Sequence[EvalResult], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{"results": {task: {method: {metric: value}}}, "runs": [...every prediction...], ...extra}`."""
    nested: dict[str, dict[str, dict[str, float]]] = {}
    for result in results:
        nested.setdefault(result.task, {})[result.method] = result.metrics
    return {"results": nested, "runs": [result.to_dict() for result in results], **(extra or {})}


def write_json(results: Sequence[EvalResult], path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write the runs (metrics, config and every prediction; see `results_json`) to `path` as JSON."""
    Path(path).write_text(json.dumps(results_json(results, extra), indent=1) + "\n")


def results_markdown(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    """The table as Markdown, under a caption line (the command that produced it, say)."""
    lines = [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
