"""`attnsteer profile` on a tiny model saved to a temp dir; bad input exits 2 before any model loads."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attnsteer import Steerer
from attnsteer.cli.main import app
from attnsteer.errors import HeadConfigError
from attnsteer.profiling import ProfileConfig
from tests.tiny_models import tiny_model


def run(*args: str):
    return CliRunner().invoke(app, ["profile", *args])


def test_profile_writes_heads_scores_and_plots(model_dir, tmp_path, tokenizer, monkeypatch):
    out, scores, plots = tmp_path / "heads.json", tmp_path / "scores.json", tmp_path / "plots"
    result = run("--model", str(model_dir), "--tasks", "json_format,pronoun_change", "--n-train", "2",
                 "--method", "coarse-to-fine", "--top-layers", "1", "--select", "union", "--top-k", "2",
                 "--out", str(out), "--scores", str(scores), "--plot", str(plots))
    assert result.exit_code == 0, result.output
    assert "selected (union, k=2)" in result.output
    written = json.loads(out.read_text())
    assert written["model_id"] == str(model_dir) and (written["num_layers"], written["num_heads"]) == (3, 4)
    assert written["provenance"].startswith("attnsteer ") and "method coarse-to-fine" in written["provenance"]
    table = json.loads(scores.read_text())
    assert ProfileConfig.from_dict(table["config"]) == ProfileConfig(
        tasks=("json_format", "pronoun_change"), n_train=2, method="coarse-to-fine", top_layers=1, select="union",
        top_k=2)
    assert set(table["tasks"]) == {"json_format", "pronoun_change"}
    union_of_top_two = {pair for task in table["tasks"].values() for pair in task["ranking"][:2]}
    assert {f"{layer}.{head}" for layer, heads in written["heads"].items() for head in heads} == union_of_top_two
    assert len(table["tasks"]["json_format"]["head_scores"]) == 3
    assert sorted(path.name for path in plots.iterdir()) == sorted(
        f"{task}_{kind}.png" for task in ("json_format", "pronoun_change") for kind in ("heatmap", "layers_vs_heads"))
    # The written file steers the model it was profiled on ...
    from attnsteer import load_model

    model, loaded_tokenizer = load_model(str(model_dir))
    assert Steerer(model, loaded_tokenizer, heads=str(out)).heads.num_heads_steered >= 1
    # ... and its scores select again without scoring: the top-1 of each task, same rankings; --install makes
    # that set the model's default (no heads given: PASTA on them, not the profiling-free default).
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path / "cache"))
    assert Steerer(model, loaded_tokenizer).method.name != "pasta"
    again = tmp_path / "again.json"
    result = run("--model", str(model_dir), "--from-scores", str(scores), "--select", "union", "--top-k", "1",
                 "--out", str(again), "--install")
    assert result.exit_code == 0, result.output
    assert "profiling (" not in result.output
    assert f"installed as this model's default head set: {tmp_path / 'cache' / 'heads'}" in result.output
    top_one = {task["ranking"][0] for task in table["tasks"].values()}
    heads = json.loads(again.read_text())["heads"]
    assert {f"{layer}.{head}" for layer, heads in heads.items() for head in heads} == top_one
    assert "method coarse-to-fine" in json.loads(again.read_text())["provenance"]
    default = Steerer(model, loaded_tokenizer)
    assert default.method.name == "pasta" and set(str(default.heads).split(",")) == top_one


def test_a_head_file_profiled_for_another_model_is_refused(tmp_path, tokenizer):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"model_id": "some/other-model", "num_layers": 3, "num_heads": 4,
                                "heads": {"1": [2]}}))
    with pytest.raises(HeadConfigError, match="profiled for model 'some/other-model'"):
        Steerer(tiny_model("llama"), tokenizer, heads=str(path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tasks", "counterfactual"], "unknown task 'counterfactual'"),
        (["--n-train", "0"], "n_train must be >= 1"),
        (["--from-scores", "missing.json"], "--from-scores: cannot read missing.json"),
        (["--method", "brute"], "unknown profiling method 'brute'"),
        (["--method", "coarse"], "did you mean 'coarse-to-fine'?"),
        (["--k-grid", "2,x"], "--k-grid takes comma-separated integers, got '2,x'"),
        (["--select", "majority"], "unknown selection rule 'majority'"),
        (["--select", "task"], "--select task needs --select-task"),
        (["--top-k", "2", "--num-heads", "3"], "not both"),
        (["--alpha", "0"], "alpha"),
    ],
)
def test_bad_input_exits_2_with_a_reason(args, message):
    result = run("--model", "/nonexistent/never-loaded", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
