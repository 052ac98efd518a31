"""Profiling figures in the style of the PASTA paper's Figure 2."""

from __future__ import annotations

from pathlib import Path

import torch

from attnsteer.plots.evaluation import _pyplot, _save
from attnsteer.profiling.methods import TaskProfile


def plot_layers_vs_heads(profile: TaskProfile, path: str | Path) -> Path:
    """Per layer: the gain of steering the whole layer (line) and of each single head (dots)."""
    pyplot = _pyplot()
    layers, heads = profile.head_scores.shape
    figure, axis = pyplot.subplots(figsize=(max(6, 0.4 * layers), 3.6))
    for head in range(heads):
        axis.scatter(range(layers), profile.head_scores[:, head].tolist(), s=14, alpha=0.7,
                     label="single heads" if head == 0 else None, color="tab:blue")
    if profile.layer_scores is not None:
        axis.plot(range(layers), profile.layer_scores.tolist(), marker="s", color="tab:red", label="whole layer")
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("layer")
    axis.set_ylabel(_score_label(profile))
    axis.set_title(f"{profile.task}: steering one head vs one whole layer ({profile.method})")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, pyplot, path)


def plot_heatmap(profile: TaskProfile, path: str | Path) -> Path:
    """A layers x heads heat map of the task's head scores (blank: not scored by the method)."""
    pyplot = _pyplot()
    scores = profile.head_scores
    limit = float(torch.nan_to_num(scores, nan=0.0).abs().max()) or 1.0
    layers, heads = scores.shape
    figure, axis = pyplot.subplots(figsize=(max(3.5, 0.5 * heads + 2), max(3.5, 0.3 * layers + 1)))
    image = axis.imshow(scores.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xlabel("head")
    axis.set_ylabel("layer")
    axis.set_title(f"{profile.task} ({profile.method})")
    figure.colorbar(image, ax=axis, label=_score_label(profile))
    figure.tight_layout()
    return _save(figure, pyplot, path)


def plot_profile(profiles: dict[str, TaskProfile], folder: str | Path) -> list[Path]:
    """Both figures for every task into `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, profile in profiles.items():
        written.append(plot_layers_vs_heads(profile, folder / f"{name}_layers_vs_heads.png"))
        written.append(plot_heatmap(profile, folder / f"{name}_heatmap.png"))
    return written


def _score_label(profile: TaskProfile) -> str:
    return "d score / d beta" if profile.method == "gradient" else "mean score gain over unsteered"
