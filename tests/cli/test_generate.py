"""`attnsteer generate` on a tiny model saved to a temp dir; bad input exits 2 with a message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app
from attnsteer.steering.methods import PROFILING_FREE_DEFAULT
from tests.cli.steering_cases import STEERING_CASES, squeezed, steering_args

PROMPT = "Previously, The Eiffel Tower is located in Paris. **Currently, The Eiffel Tower is located in Rome.** The"


def run(*args: str):
    return CliRunner().invoke(app, ["generate", *args])


@pytest.fixture(scope="module")
def library(model_dir):
    """A `Steerer` on the same saved model, loaded through the library: the reference for the CLI's text."""
    return Steerer(*load_model(str(model_dir)), heads="1")


def test_generate_and_compare(model_dir, library):
    result = run(PROMPT, "--model", str(model_dir), "--heads", "0.1,2", "--max-new-tokens", "8")
    assert result.exit_code == 0, result.output
    steerer = library.with_options(heads="0.1,2")
    steered = steerer.generate(PROMPT, max_new_tokens=8)
    assert result.stdout == steered + "\n"
    assert steered != steerer.generate(PROMPT, max_new_tokens=8, steer=False)  # so --compare has two texts
    compared = run(PROMPT, "--model", str(model_dir), "--heads", "0.1,2", "--max-new-tokens", "8", "--compare")
    assert compared.exit_code == 0, compared.output
    assert "plain" in compared.output and "steered" in compared.output
    assert "0.1,2.0,2.1,2.2,2.3" in compared.output.replace("\n", "").replace(" ", "")


def test_emphasize_option(model_dir, library):
    plain_prompt = PROMPT.replace("**", "")
    result = run(plain_prompt, "--model", str(model_dir), "--heads", "1", "-e", "Rome", "-e", "Paris")
    assert result.exit_code == 0, result.output
    steered = library.generate(plain_prompt, emphasize=["Rome", "Paris"], max_new_tokens=20)  # the CLI's default
    assert result.stdout == steered + "\n"
    marked = plain_prompt.replace("Paris", "**Paris**", 1).replace("Rome", "**Rome**", 1)
    assert steered == library.generate(marked, max_new_tokens=20)  # -e TEXT emphasises as **TEXT** does
    assert steered != library.generate(plain_prompt, max_new_tokens=20, steer=False)


@pytest.mark.parametrize(("args", "message"), [
    (["-e", "Berlin"], "Berlin"),
    (["--heads", "0.9"], "head 9 of layer 0 is out of range"),
    (["--heads", "7"], "layer 7 is out of range"),
    (["--alpha", "0"], "alpha must be in (0, 1]"),
    (["--alpha", "1.5"], "alpha must be in (0, 1]"),
    (["--mode", "sideways"], "mode must be one of"),
])
def test_bad_input_exits_2_with_the_reason(model_dir, args, message):
    result = run(PROMPT, "--model", str(model_dir), "--heads", "1", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unbalanced_markup_and_empty_prompt(model_dir):
    for prompt, message in (("Paris **Rome", "never closed"), ("", "empty")):
        result = run(prompt, "--model", str(model_dir), "--heads", "1")
        assert result.exit_code == 2 and message in result.output.lower(), result.output


def test_console_script_is_installed():
    script = shutil.which("attnsteer") or str(Path(sys.executable).parent / "attnsteer")
    result = subprocess.run([script, "generate", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "--compare" in result.stdout


@pytest.mark.parametrize(("method", "parameters"), STEERING_CASES)
def test_each_steering_method_equals_the_library(model_dir, library, method, parameters):
    args = [PROMPT, "--model", str(model_dir), *steering_args(method, parameters), "--max-new-tokens", "8"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    steerer = Steerer(library.model, library.tokenizer, method=method, **parameters)
    steered = steerer.generate(PROMPT, max_new_tokens=8)
    assert result.stdout == steered + "\n"
    assert steered != steerer.generate(PROMPT, max_new_tokens=8, steer=False)
    compared = run(*args, "--compare")
    assert compared.exit_code == 0, compared.output
    assert squeezed(steerer.method.describe()) in squeezed(compared.stdout)  # the caption names the method


@pytest.mark.parametrize(("parameters", "method"), [
    ({}, PROFILING_FREE_DEFAULT),  # the tiny model ships no head set
    ({"boost": 8.0}, "instaboost"),
    ({"granularity": "head"}, "spotlight"),
    ({"heads": "1", "mode": "include"}, "pasta"),
])
def test_without_steering_the_options_choose_the_method_as_the_library_does(model_dir, library, parameters, method):
    result = run(PROMPT, "--model", str(model_dir), *steering_args(None, parameters), "--max-new-tokens", "4",
                 "--compare")
    assert result.exit_code == 0, result.output
    chosen = Steerer(library.model, library.tokenizer, **parameters).method
    assert chosen.name == method
    assert squeezed(chosen.describe()) in squeezed(result.stdout)


@pytest.mark.parametrize(("args", "message"), [
    (["--steering", "spotlite"], "unknown steering method 'spotlite'; choose one of 'pasta', 'instaboost', "
     "'spotlight'; did you mean 'spotlight'?"),
    (["--steering", "instaboost", "--heads", "1"], "--heads is not a parameter of steering method 'instaboost'; "
     "its parameters: --boost"),
    (["--steering", "spotlight", "--alpha", "0.5", "--mode", "include"], "--alpha, --mode are not parameters of "
     "steering method 'spotlight'; its parameters: --target, --granularity"),
    (["--boost", "2", "--target", "0.5"], "--boost, --target belong to different steering methods (pasta: --heads, "
     "--alpha, --mode; instaboost: --boost; spotlight: --target, --granularity); choose one with --steering"),
    (["--steering", "instaboost", "--boost", "0.5"], "boost must be >= 1"),
    (["--steering", "spotlight", "--target", "1"], "target must be a share of attention in (0, 1)"),
    (["--granularity", "token"], "granularity must be one of ('layer', 'head'), got 'token'"),
    (["--steering", "pasta", "--alpha", "0"], "alpha must be in (0, 1]"),
])
def test_bad_steering_options_exit_2_before_loading(monkeypatch, args, message):
    monkeypatch.setattr("attnsteer.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    result = run(PROMPT, "--model", "/never/loaded", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1, result.stderr
