"""Evaluation figures: methods side by side, and the paper's Figure 3-style sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnsteer.errors import AttnsteerError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise AttnsteerError("plots need matplotlib: pip install 'attnsteer[plots]'") from None
    return pyplot


def plot_methods(header: Sequence[str], rows: Sequence[Sequence[str]], path: str | Path) -> Path:
    """Grouped bars: one group per task metric column, one bar per method (values from `results_table`)."""
    pyplot = _pyplot()
    columns = list(header[1:])
    figure, axis = pyplot.subplots(figsize=(max(6, 1.2 * len(columns)), 4))
    width = 0.8 / max(1, len(rows))
    for index, row in enumerate(rows):
        values = [float(cell) if cell != "-" else 0.0 for cell in row[1:]]
        axis.bar([c + index * width for c in range(len(columns))], values, width, label=row[0])
    axis.set_xticks([c + 0.4 - width / 2 for c in range(len(columns))], columns, rotation=30, ha="right")
    axis.set_ylabel("score")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, pyplot, path)


def plot_sweep(points: Sequence[dict], x_key: str, path: str | Path, log_x: bool = False) -> Path:
    """Lines of each `task/metric` against `x_key` (alpha or number of heads), like the paper's Figure 3.

    points: dicts with x_key, "task", "metrics".
    """
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(6, 4))
    series: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        for metric, value in point["metrics"].items():
            series.setdefault(f"{point['task']}/{metric}", []).append((point[x_key], value))
    for name, values in sorted(series.items()):
        values.sort()
        axis.plot([x for x, _ in values], [y for _, y in values], marker="o", label=name)
    if log_x:
        axis.set_xscale("log")
    axis.set_xlabel(x_key)
    axis.set_ylabel("score")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, pyplot, path)


def plot_pareto(points: Sequence[dict], x_key: str, y_key: str, path: str | Path) -> Path:
    """A trade-off figure: one line per method through its strength sweep, x_key against y_key, each point
    labelled with its strength (a Pareto view: up and to the right is better when both are).

    points: dicts with "method", "strength" (a number), x_key and y_key (numbers); a point whose method is
    "zero-shot" is drawn as one star (the unsteered model).
    """
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(6.5, 4.5))
    by_method: dict[str, list[dict]] = {}
    for point in points:
        by_method.setdefault(point["method"], []).append(point)
    for method, group in by_method.items():
        group = sorted(group, key=lambda point: point["strength"])
        xs, ys = [point[x_key] for point in group], [point[y_key] for point in group]
        if method == "zero-shot":
            axis.scatter(xs, ys, marker="*", s=160, color="black", label=method, zorder=3)
            continue
        axis.plot(xs, ys, marker="o", label=method)
        for point in group:
            axis.annotate(f"{point['strength']:g}", (point[x_key], point[y_key]), fontsize=7,
                          textcoords="offset points", xytext=(3, 3))
    axis.set_xlabel(x_key)
    axis.set_ylabel(y_key)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, pyplot, path)


def _save(figure, pyplot, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
