"""Commands show their own output and progress only: no transformers loading bar, no deprecation warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsteer.cli.main import app


@pytest.fixture
def context_file(tmp_path):
    path = tmp_path / "context.txt"
    path.write_text("The Eiffel Tower is in Paris. Mary Jones is a nurse.")
    return str(path)


def commands(model_dir: Path, context_file: str) -> dict[str, list[str]]:
    """One short run of each command that loads a model (serve excepted: it does not return)."""
    model = ["--model", str(model_dir)]
    return {
        "generate": ["generate", "**Rome** is in", "--heads", "1", "--max-new-tokens", "2", *model],
        "eval": ["eval", "--task", "counterfact", "--method", "pasta", "--limit", "1", "--heads", "1", *model],
        "ask": ["ask", "--context", context_file, "--query", " Where?", "--heads", "1", "--max-new-tokens", "2",
                *model],
        "profile": ["profile", "--tasks", "json_format", "--n-train", "1", "--method", "gradient", "--top-k", "1",
                    *model],
    }


@pytest.mark.parametrize("command", ["generate", "eval", "ask", "profile"])
def test_no_transformers_loading_bar(model_dir, context_file, command):
    result = CliRunner().invoke(app, commands(model_dir, context_file)[command])
    assert result.exit_code == 0, result.output
    assert "Loading weights" not in result.output


@pytest.mark.parametrize("command", ["eval", "ask"])
def test_no_deprecation_warning(model_dir, context_file, command):
    """In a fresh process: transformers warns once per process, so an earlier test could hide the warning."""
    script = shutil.which("attnsteer") or str(Path(sys.executable).parent / "attnsteer")
    result = subprocess.run([script, *commands(model_dir, context_file)[command]], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "deprecated" not in output.lower() and "Loading weights" not in output
