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


def test_the_demo_explains_an_instruction_the_model_does_not_follow(demo, embedded, embedded_chat, monkeypatch,
                                                                   capsys):
    models = {None: embedded, demo.CHAT_MODEL: embedded_chat}
    monkeypatch.setattr("attnsteer.load_model", lambda name=None: models[name])
    demo.main()
    output = capsys.readouterr().out
    measured = re.findall(r"on the emphasised text: plain (\d+)%, steered (\d+)%", output)
    assert len(measured) == len(demo.CASES)
    assert all(int(steered) > int(plain) for plain, steered in measured)
    instruction = output.split("== instruction ==")[1].split("== bio question ==")[0]
    plain, steered = measured[1]
    assert f"from {plain}% to {steered}%: Gemma 3 270M is a base model" in instruction
    assert "docs/results.md" in instruction
    # Every case prints the command that reproduces it; the chat model's cases report JSON or not, both ways.
    assert output.count("reproduce: attnsteer ") == len(demo.CASES) + len(demo.CHAT_CASES)
    chat = re.findall(r"JSON in the reply: plain (.*); steered (.*)", output)
    assert len(chat) == len(demo.CHAT_CASES)
    # The point of the chat part: the emphasised instruction is followed steered and not plain.
    assert all(plain == "none" and steered != "none" for plain, steered in chat), chat


def test_json_in_tells_whole_begun_and_missing_objects(demo):
    assert demo.json_in('Sure! {"name": "Mary Jones", "occupation": "nurse"} Done.') == "a whole JSON object"
    begun = 'Here:\n{\n  "name": "Mary Jones",\n  "occupation": {'
    assert demo.json_in(begun) == "a JSON object, cut by the token budget"
    assert demo.json_in("Mary Jones is a nurse {at heart}.") == "none"
