"""Bad input that needs no model is reported at once: exit 2, one line on stderr, no model loaded.

The CLI's own modules import neither torch nor transformers; each command checks names, numbers and
files first and imports `load_model` only after that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from attnsteer.cli.main import app
from tests.import_check import heavy_modules_after


def test_importing_the_cli_imports_no_torch():
    assert heavy_modules_after("import sys, attnsteer.cli.main") == []


@pytest.fixture
def never_loads(monkeypatch):
    """Fail the test if any command calls `load_model`."""
    def load_model(*args, **kwargs):
        pytest.fail(f"a model was loaded ({args}, {kwargs}) although the input is bad")

    monkeypatch.setattr("attnsteer.models.load_model", load_model)


@pytest.fixture
def files(tmp_path):
    """A context file, a malformed JSON file, a head file that is not JSON, and a path that does not exist."""
    (tmp_path / "context.txt").write_text("The Eiffel Tower is in Paris.")
    (tmp_path / "malformed.json").write_text('[{"case_id": 1,')
    (tmp_path / "heads.json").write_text("11.2, 12.0")
    return {"context": str(tmp_path / "context.txt"), "malformed": str(tmp_path / "malformed.json"),
            "bad_heads": str(tmp_path / "heads.json"), "missing": str(tmp_path / "missing.json")}


BAD_INPUT = [
    (["eval", "--task", "counterfact", "--method", "autopasta"],
     "method 'autopasta' needs generation examples that mark their context (tasks squad, gsm8k); task "
     "'counterfact' example"),
    (["eval", "--task", "squad,counterfact", "--method", "pasta,llmsteer"], "method 'llmsteer' needs generation"),
    (["eval", "--task", "counterfact", "--heads", "{missing}"], "head config file '{missing}' does not exist"),
    (["eval", "--task", "counterfact", "--heads", "{bad_heads}"], "is not valid JSON"),
    (["eval", "--task", "counterfact", "--data", "{missing}"], "cannot read task data file '{missing}'"),
    (["eval", "--task", "counterfact", "--data", "{malformed}"], "{malformed}: invalid JSON at line 1"),
    (["eval", "--task", "counterfact", "--split", "dev"], "unknown split 'dev'"),
    (["eval", "--task", ","], "--task needs at least one task name"),
    (["eval", "--task", "squad", "--method", "llmsteer", "--top-fraction", "0"], "top_fraction must be"),
    (["ask", "--context", "{context}", "--query", " Q?", "--chat", "sometimes"],
     "--chat takes one of auto, on, off, got 'sometimes'"),
    (["generate", "no emphasis here"], "nothing is emphasised: mark text in the prompt with **...** or pass "
     "--emphasize TEXT"),
    (["generate", "**Rome**", "--heads", "{missing}"], "head config file '{missing}' does not exist"),
    (["ask", "--context", "{context}", "--query", " Q?", "--heads", "{missing}"], "does not exist"),
    (["serve", "--heads", "{missing}"], "does not exist"),
]
STEERING_BAD_INPUT = [  # --steering and its parameters: generate, chat and ask check them before loading
    (["generate", "**Rome**", "--steering", "spotlite"], "unknown steering method 'spotlite'; choose one of 'pasta', "
     "'instaboost', 'spotlight'; did you mean 'spotlight'?"),
    (["chat", "--user", "**Rome**", "--steering", "spotlight", "--alpha", "0.5"], "--alpha is not a parameter of "
     "steering method 'spotlight'; its parameters: --target, --granularity"),
    (["ask", "--context", "{context}", "--query", " Q?", "--steering", "instaboost", "--boost", "0.5"],
     "boost must be >= 1"),
    (["ask", "--context", "{context}", "--query", " Q?", "--boost", "2", "--mode", "include"],
     "--mode, --boost belong to different steering methods"),
    (["generate", "**Rome**", "--steering", "spotlight", "--target", "1.5"],
     "target must be a share of attention in (0, 1)"),
    (["chat", "--user", "**Rome**", "--granularity", "token"], "granularity must be one of ('layer', 'head')"),
    (["generate", "**Rome**", "--steering", "pasta", "--heads", "{missing}"], "does not exist"),
]
BAD_INPUT += STEERING_BAD_INPUT


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_exits_2_on_one_line_before_any_model_loads(never_loads, files, args, message):
    result = CliRunner().invoke(app, [arg.format(**files) for arg in args] + ["--model", "/never/loaded"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message.format(**files) in result.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "no tokenizer"])
def test_a_model_that_cannot_load_is_one_line(tmp_path, tiny_model_dir, case):
    folder = tmp_path / "model"
    if case != "missing":
        folder.mkdir()
    if case == "no tokenizer":
        shutil.copy(tiny_model_dir("llama") / "config.json", folder / "config.json")
    result = CliRunner().invoke(app, ["generate", "**Rome** is", "--heads", "1", "--model", str(folder)])
    assert result.exit_code == 2, result.output
    expected = {"missing": f"error: no such directory: {str(folder)!r}",
                "empty": f"error: no model files (config.json and the weights) in {str(folder)!r}",
                "no tokenizer": "error: no tokenizer files (tokenizer.json, "}[case]
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize(("args", "message"), [BAD_INPUT[0], BAD_INPUT[2], BAD_INPUT[8], STEERING_BAD_INPUT[0],
                                               STEERING_BAD_INPUT[3]])
def test_bad_input_is_reported_without_importing_torch(files, args, message):
    """In a fresh process (the 8-10 s of importing torch and transformers are what a user waits for)."""
    script = ("import sys\nfrom attnsteer.cli.main import main\nsys.argv = ['attnsteer', *sys.argv[1:]]\n"
              "try:\n    main()\nexcept SystemExit as end:\n    code = end.code\n"
              "print('torch' in sys.modules, 'transformers' in sys.modules, code)")
    argv = [arg.format(**files) for arg in args] + ["--model", "/never/loaded"]
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=False)
    assert result.stdout.split() == ["False", "False", "2"], result.stdout + result.stderr
    assert message.format(**files) in result.stderr
