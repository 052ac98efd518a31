"""`attnsteer eval` runs the autopasta and llmsteer methods on squad and gsm8k (tiny model)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from attnsteer.cli.main import app
from attnsteer.context import ContextError
from attnsteer.evaluation import evaluate


def test_eval_cli_runs_the_context_methods(tiny_model_dir, tmp_path):
    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, [
        "eval", "--task", "squad,gsm8k", "--method", "zero-shot,autopasta,llmsteer", "--limit", "2",
        "--model", str(tiny_model_dir("gemma3")), "--heads", "0.1,1", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for task in ("squad", "gsm8k"):
        assert set(data["results"][task]) == {"zero-shot", "autopasta", "llmsteer"}
    runs = {(run["task"], run["method"]): run for run in data["runs"]}
    squad = runs[("squad", "llmsteer")]["predictions"]
    assert len(squad) == len(runs[("squad", "zero-shot")]["predictions"]) > 2
    store = squad[-1]["context_store"]
    # two paragraphs, several questions each: one prepared context per paragraph, reused
    assert store["misses"] == 2 and store["hits"] == len(squad) - 2
    assert all("fell_back" in p["metrics"] for p in runs[("gsm8k", "autopasta")]["predictions"])


def test_context_methods_need_a_task_with_a_context(tiny_model_dir):
    from attnsteer.models import load_model

    model, tokenizer = load_model(str(tiny_model_dir("gemma3")))
    try:
        evaluate(model, tokenizer, "counterfact", "llmsteer", heads="0.1", limit=1, progress=False)
    except ContextError as error:
        assert "needs generation examples that mark their context (tasks squad, gsm8k)" in str(error)
    else:
        raise AssertionError("llmsteer on counterfact must be refused")
    result = CliRunner().invoke(app, ["eval", "--task", "biasbios", "--method", "autopasta", "--limit", "1",
                                      "--model", str(tiny_model_dir("gemma3")), "--heads", "0.1"])
    assert result.exit_code == 2 and "mark their context" in result.output
