"""`attnsteer ask` on a tiny model saved to a temp dir; bad input exits 2 with a message."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attnsteer.cli.main import app
from tests.context.conftest import CONTEXT


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("gemma3")


@pytest.fixture
def context_file(tmp_path):
    path = tmp_path / "context.txt"
    path.write_text(CONTEXT)
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["ask", *args])


@pytest.mark.parametrize("method", ["llmsteer", "autopasta", "plain"])
def test_ask_answers_every_query(model_dir, context_file, method):
    result = run("--context", str(context_file), "--query", " Where is it?", "--query", " Who is a nurse?",
                 "--method", method, "--model", str(model_dir), "--heads", "0.1,1", "--max-new-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [row["query"] for row in rows] == [" Where is it?", " Who is a nurse?"]
    assert all(isinstance(row["answer"], str) and row["seconds"] >= 0 for row in rows)
    if method == "llmsteer":
        assert rows[0]["emphasised_tokens"] and rows[0]["emphasised_tokens"] == rows[1]["emphasised_tokens"]


def test_text_output(model_dir, context_file):
    result = run("--context", str(context_file), "--query", " Where?", "--model", str(model_dir),
                 "--heads", "0.1", "--max-new-tokens", "2", "--top-k", "4")
    assert result.exit_code == 0, result.output
    assert "Q:  Where?\nA: " in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "bold"], "unknown method 'bold'; allowed: llmsteer, autopasta, plain"),
    (["--top-k", "0"], "top_k must be a positive integer"),
    (["--top-k", "-2"], "top_k must be a positive integer"),
    (["--alpha", "3"], "alpha must be in (0, 1]"),
    (["--query", "  "], "a --query is empty"),
])
def test_bad_input_exits_2(context_file, args, message):
    base = ["--context", str(context_file)] + ([] if "--query" in args else ["--query", " Q?"])
    result = run(*base, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_missing_or_empty_context_file_exits_2(tmp_path):
    missing = run("--context", str(tmp_path / "nope.txt"), "--query", " Q?")
    assert missing.exit_code == 2 and "cannot read the context file" in missing.output
    (tmp_path / "empty.txt").write_text("  \n")
    empty = run("--context", str(tmp_path / "empty.txt"), "--query", " Q?")
    assert empty.exit_code == 2 and "is empty" in empty.output
