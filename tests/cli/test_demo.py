"""`make demo` (examples/demo.py): it measures what steering does and explains an unchanged output."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from attnsteer import Steerer, load_model

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("attnsteer_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_steering_moves_the_steered_heads_attention_onto_the_emphasis(demo, model_dir):
    steerer = Steerer(*load_model(str(model_dir)), heads="1.0,2.3")
    prompt = "Previously, The Eiffel Tower is in Paris. **Currently, The Eiffel Tower is in Rome.** It is in"
    plain, steered = (demo.emphasis_attention(steerer, prompt, steer) for steer in (False, True))
    assert 0 < plain < steered <= 1
    assert steered > 0.9  # alpha 0.01 leaves about 1% of the non-emphasised mass


def test_the_demo_explains_an_instruction_the_model_does_not_follow(demo, embedded, monkeypatch, capsys):
    monkeypatch.setattr("attnsteer.load_model", lambda: embedded)
    demo.main()
    output = capsys.readouterr().out
    measured = re.findall(r"on the emphasised text: plain (\d+)%, steered (\d+)%", output)
    assert len(measured) == len(demo.CASES)
    assert all(int(steered) > int(plain) for plain, steered in measured)
    instruction = output.split("== instruction ==")[1].split("== bio question ==")[0]
    plain, steered = measured[1]
    assert f"from {plain}% to {steered}%: Gemma 3 270M is a base model" in instruction
    assert "docs/results.md" in instruction
