"""The evaluation figures are written as real PNGs from the points they are given."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from attnsteer.plots.evaluation import plot_pareto  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pareto_figure_draws_each_method_and_the_unsteered_point(tmp_path):
    points = [{"method": "zero-shot", "strength": 0.0, "fluency": 3.8, "conflict": 20.0},
              {"method": "instaboost (boost)", "strength": 10.0, "fluency": 3.0, "conflict": 80.0},
              {"method": "instaboost (boost)", "strength": 3.0, "fluency": 3.6, "conflict": 55.0},
              {"method": "spotlight-head (target)", "strength": 0.3, "fluency": 3.2, "conflict": 70.0}]
    path = plot_pareto(points, "fluency", "conflict", tmp_path / "sub" / "pareto.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert path.stat().st_size > 5000  # axes, two lines, a star and labels, not an empty canvas


def test_pareto_figure_needs_the_axes_keys(tmp_path):
    with pytest.raises(KeyError, match="conflict"):
        plot_pareto([{"method": "pasta", "strength": 0.01, "fluency": 3.0}], "fluency", "conflict",
                    tmp_path / "p.png")
