"""`attnsteer eval` end to end on a tiny random model: the table, the JSON, the figures."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from attnsteer.cli.main import app
from attnsteer.evaluation.runner import EvalProgress
from attnsteer.tasks import get_task, task_names


def recomputed_metrics(run: dict) -> dict[str, float]:
    """A run's metrics recomputed from its logged predictions: each example's metrics from its logged
    scores or output (which must equal the logged metrics), then the task's aggregate of them."""
    task = get_task(run["task"])()
    examples = {example.id: example for example in task.examples(run["config"]["split"], run["config"]["limit"])}
    assert sorted(prediction["id"] for prediction in run["predictions"]) == sorted(examples)
    for prediction in run["predictions"]:
        example = examples[prediction["id"]]
        if example.kind == "score":
            expected = task.score_metrics(example, [tuple(score) for score in prediction["scores"]])
        else:
            expected = task.generation_metrics(example, prediction["output"])
        assert prediction["metrics"] == pytest.approx(expected), prediction["id"]
    return task.aggregate([prediction["metrics"] for prediction in run["predictions"]])


def test_eval_every_task_and_method_writes_json_and_png(model_dir, tmp_path):
    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, [
        "eval", "--task", ",".join(task_names()), "--method", "all", "--limit", "3", "--model", str(model_dir),
        "--heads", "0.1,1", "--json", str(out), "--plot", str(tmp_path / "plots"), "--batch-size", "2",
        "--markdown", str(tmp_path / "results.md"),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["results"]) == set(task_names())
    for by_method in data["results"].values():
        assert set(by_method) == {"zero-shot", "marked-star", "marked-quote", "few-shot", "pasta", "few-shot+pasta"}
    assert len(data["runs"]) == 6 * len(task_names())
    for run in data["runs"]:
        assert data["results"][run["task"]][run["method"]] == pytest.approx(recomputed_metrics(run)), run["method"]
    assert "average" in result.output and "few-shot+pasta" in result.output
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("Command: `attnsteer") and "| few-shot+pasta |" in markdown
    png = tmp_path / "plots" / "methods.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_alpha_and_num_heads_sweeps(model_dir, tmp_path):
    result = CliRunner().invoke(app, [
        "eval", "--task", "counterfact", "--method", "pasta", "--limit", "2", "--model", str(model_dir),
        "--heads", "1.2,0.1,2.0", "--alpha", "0.01,0.5", "--num-heads", "1,3", "--plot", str(tmp_path),
    ])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert [point["alpha"] for point in figures["alpha_sweep"]] == [0.01, 0.5]
    assert [point["num_heads"] for point in figures["num_heads_sweep"]] == [1, 3]
    assert (tmp_path / "alpha_sweep.png").exists() and (tmp_path / "num_heads_sweep.png").exists()


def test_instaboost_and_spotlight_runs_record_their_steering_and_sweep_their_strength(model_dir, tmp_path):
    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, [
        "eval", "--task", "counterfact", "--method", "pasta,instaboost,spotlight", "--limit", "2", "--model",
        str(model_dir), "--heads", "1", "--boost", "2,5", "--target", "0.3", "--granularity", "head",
        "--json", str(out), "--plot", str(tmp_path / "plots"),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {run["method"]: run["config"]["steering"] for run in data["runs"]} == {
        "pasta": {"method": "pasta", "heads": "1.0,1.1,1.2,1.3", "alpha": 0.01, "mode": "exclude"},
        "instaboost": {"method": "instaboost", "boost": 2.0},
        "spotlight": {"method": "spotlight", "target": 0.3, "granularity": "head"}}
    assert [(point["boost"], point["method"]) for point in data["sweeps"]["boost_sweep"]] == [
        (2.0, "instaboost"), (5.0, "instaboost")]
    assert data["sweeps"]["target_sweep"] == data["sweeps"]["alpha_sweep"] == []  # one value each: no sweep
    figures = json.loads((tmp_path / "plots" / "figures.json").read_text())
    assert figures["boost_sweep"] == data["sweeps"]["boost_sweep"] and (tmp_path / "plots" / "boost_sweep.png").exists()
    caption = " ".join(result.output.split())  # the table's caption, wrapped to the terminal
    assert "instaboost: boost 2.0; spotlight: target 0.3, granularity head" in caption


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "counterfact", "--method", "instaboost", "--boost", "0.5"], "boost must be >= 1"),
    (["--task", "counterfact", "--method", "instaboost", "--boost", "2,x"], "--boost takes comma-separated numbers"),
    (["--task", "counterfact", "--method", "spotlight", "--target", "1.5"], "target must be a share of attention"),
    (["--task", "counterfact", "--method", "spotlight", "--granularity", "row"], "granularity must be one of"),
    (["--task", "counterfact", "--method", "all", "--boost", "2"], "--boost is given but none of the methods"),
    (["--task", "counterfact", "--method", "pasta", "--granularity", "head"], "add spotlight to the methods"),
    (["--task", "counterfactt"], "counterfact"),
    (["--task", "counterfact", "--method", "bold"], "unknown evaluation method 'bold'"),
    (["--task", "counterfact", "--method", "marke"], "did you mean 'marked'?"),
    (["--task", "counterfact", "--alpha", "2"], "alpha must be in (0, 1]"),
    (["--task", "counterfact", "--alpha", "x"], "--alpha takes comma-separated numbers"),
    (["--task", "counterfact", "--alpha", ","], "--alpha needs at least one number"),
    (["--task", "counterfact", "--num-heads", "1,2.5"], "--num-heads takes comma-separated integers"),
    (["--task", "counterfact,biasbios", "--data", "f.jsonl"], "--data goes with exactly one --task"),
    (["--task", "counterfact", "--chat", "yes"], "--chat takes one of auto, on, off"),
])
def test_bad_eval_input_exits_2(args, message):
    result = CliRunner().invoke(app, ["eval", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_progress_moves_per_generated_token():
    """A batch of 2 examples with a budget of 4 tokens moves the bar 0.5 example per decoding step."""
    progress = EvalProgress(total=3, desc="task / method")
    progress.finished()  # a scoring example
    streamer = progress.streamer(count=2, max_new_tokens=4)
    streamer.put(torch.zeros(2, 7, dtype=torch.long))  # generate's first put: the prompt ids
    assert progress.bar.n == 1
    positions = []
    for _ in range(3):  # three decoding steps of the batch
        streamer.put(torch.zeros(2, dtype=torch.long))
        positions.append(progress.bar.n)
    assert positions == [1.5, 2.0, 2.5]
    assert progress.bar.postfix == "1/3 examples, generating 2: token 3/4"
    progress.finished(2)  # the batch stopped early (every row hit EOS): the bar still ends at its total
    assert (progress.bar.n, progress.done, progress.bar.postfix) == (3, 3, "3/3 examples")
    progress.close()


def test_eval_bar_moves_while_a_batch_generates(model_dir, monkeypatch):
    steps, finals = [], []
    generating, close = EvalProgress.generating, EvalProgress.close

    def record_step(self, count, step, max_new_tokens):
        generating(self, count, step, max_new_tokens)
        steps.append((count, step, max_new_tokens, self.bar.n))

    def record_close(self):
        finals.append((self.bar.n, self.total))
        close(self)

    monkeypatch.setattr(EvalProgress, "generating", record_step)
    monkeypatch.setattr(EvalProgress, "close", record_close)
    result = CliRunner().invoke(app, ["eval", "--task", "json_format", "--method", "pasta", "--limit", "2",
                                      "--batch-size", "2", "--model", str(model_dir), "--heads", "1"])
    assert result.exit_code == 0, result.output
    budget = get_task("json_format")().examples("test", 2)[0].max_new_tokens
    assert steps and [step[1] for step in steps] == list(range(1, len(steps) + 1))  # every decoding step
    assert all(count == 2 and total == budget for count, _, total, _ in steps)
    positions = [position for *_, position in steps]
    assert positions == sorted(positions) and 0 < positions[0] < positions[-1] <= 2
    assert positions[0] == pytest.approx(2 / budget)
    assert finals == [(2, 2)]
