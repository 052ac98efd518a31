"""`attnsteer ask` on a tiny model saved to a temp dir; bad input exits 2 with a message."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app
from attnsteer.context import LLMSteerConfig, autopasta_generate, prepare_context
from tests.cli.steering_cases import STEERING_CASES, steering_args
from tests.context.conftest import CONTEXT


@pytest.fixture
def context_file(tmp_path):
    path = tmp_path / "context.txt"
    path.write_text(CONTEXT)
    return path


QUERIES = [" Where is it?", " Who is a nurse?"]


def run(*args: str):
    return CliRunner().invoke(app, ["ask", *args])


@pytest.fixture(scope="module")
def library(model_dir):
    """The steerer `attnsteer ask --model DIR --heads 0.1,1` builds, loaded here through the library."""
    return Steerer(*load_model(str(model_dir)), heads="0.1,1", markup=None)


def library_answer(steerer: Steerer, method: str, query: str, max_new_tokens: int) -> str:
    """The answer to `query` after CONTEXT, computed with the library (plain: no reused cache at all)."""
    if method == "plain":
        return steerer.generate(CONTEXT + query, max_new_tokens=max_new_tokens, steer=False)
    if method == "autopasta":
        return autopasta_generate(steerer, CONTEXT, query, max_new_tokens).text
    return prepare_context(steerer, CONTEXT, method).generate(query, max_new_tokens=max_new_tokens)


@pytest.mark.parametrize("method", ["llmsteer", "autopasta", "plain"])
def test_ask_answers_every_query(model_dir, context_file, library, method):
    result = run("--context", str(context_file), "--query", QUERIES[0], "--query", QUERIES[1],
                 "--method", method, "--model", str(model_dir), "--heads", "0.1,1", "--max-new-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [row["query"] for row in rows] == QUERIES
    assert [row["answer"] for row in rows] == [library_answer(library, method, query, 3) for query in QUERIES]
    assert all(row["seconds"] >= 0 for row in rows)
    if method == "llmsteer":  # one context, emphasised once, shared by both queries; it changes the answers
        emphasised = prepare_context(library, CONTEXT, "llmsteer").emphasised_text
        assert emphasised and rows[0]["emphasised_tokens"] == rows[1]["emphasised_tokens"] == emphasised
        assert [row["answer"] for row in rows] != [library_answer(library, "plain", query, 3) for query in QUERIES]


def test_text_output(model_dir, context_file, library):
    result = run("--context", str(context_file), "--query", " Where?", "--model", str(model_dir),
                 "--heads", "0.1", "--max-new-tokens", "2", "--top-k", "4")
    assert result.exit_code == 0, result.output
    prepared = prepare_context(library.with_options(heads="0.1"), CONTEXT, "llmsteer", llmsteer=LLMSteerConfig(top_k=4))
    assert result.stdout == f"Q:  Where?\nA: {prepared.generate(' Where?', max_new_tokens=2)}\n\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "bold"], "unknown method 'bold'; allowed: llmsteer, autopasta, plain"),
    (["--top-k", "0"], "top_k must be a positive integer"),
    (["--top-k", "-2"], "top_k must be a positive integer"),
    (["--alpha", "3"], "alpha must be in (0, 1]"),
    (["--query", "  "], "a --query is empty"),
    (["--steering", "instaboost", "--boost", "0.9"], "boost must be >= 1"),
    (["--steering", "spotlight", "--heads", "1"], "--heads is not a parameter of steering method 'spotlight'"),
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


def test_ask_through_the_chat_template(tmp_path, context_file, chat_steerer):
    """--chat on: context + query are one user message; the answers are the library's `chat=True` ones."""
    chat_steerer.model.save_pretrained(tmp_path / "chat")
    chat_steerer.tokenizer.save_pretrained(tmp_path / "chat")
    result = run("--context", str(context_file), "--query", QUERIES[0], "--method", "plain", "--chat", "on",
                 "--model", str(tmp_path / "chat"), "--heads", "1", "--max-new-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))["answer"]
    assert answer == prepare_context(chat_steerer, CONTEXT, "plain", chat=True).generate(QUERIES[0], max_new_tokens=3)


@pytest.mark.parametrize(("method", "parameters"), STEERING_CASES)
def test_each_steering_method_equals_the_library(model_dir, context_file, library, method, parameters):
    """--steering says how the tokens LLMSteer picks are steered (AutoPASTA falls back to plain on a random
    model, so LLMSteer is the one that shows it); --method stays the context method."""
    result = run("--context", str(context_file), "--query", QUERIES[0], "--query", QUERIES[1], "--method",
                 "llmsteer", *steering_args(method, parameters), "--model", str(model_dir), "--max-new-tokens", "3",
                 "--json")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line)["answer"] for line in result.stdout.splitlines() if line.startswith("{")]
    steerer = Steerer(library.model, library.tokenizer, method=method, markup=None, **parameters)
    assert answers == [library_answer(steerer, "llmsteer", query, 3) for query in QUERIES]
    assert answers != [library_answer(steerer, "plain", query, 3) for query in QUERIES]  # steering changed them
