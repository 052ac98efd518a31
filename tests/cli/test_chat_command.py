"""`attnsteer chat`: the same reply as `Steerer.chat`; bad input exits 2 before any model loads."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app
from tests.cli.steering_cases import STEERING_CASES, squeezed, steering_args

SYSTEM = "Answer the occupation of the person and generate the answer as json format."
USER = "She is a nurse who works at the hospital."


def test_chat_equals_the_library(model_dir):
    args = ["chat", "--system", SYSTEM, "--user", USER, "-e", "json format", "--heads", "1",
            "--max-new-tokens", "6", "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    steerer = Steerer(*load_model(str(model_dir)), heads="1")
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    expected = steerer.chat(messages, substrings=["json format"], max_new_tokens=6)
    assert result.stdout == expected + "\n"
    compared = CliRunner().invoke(app, [*args, "--compare"])
    assert compared.exit_code == 0 and expected in compared.stdout
    assert steerer.chat(messages, substrings=["json format"], max_new_tokens=6, steer=False) in compared.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--user", USER], "nothing is emphasised"),
    (["--user", USER, "-e", "a doctor"], "'a doctor' occurs in no message content"),
    (["--user", "a **b"], "**"),
    (["--user", "**x**", "--alpha", "0"], "alpha must be in (0, 1]"),
    (["--user", "**x**", "--steering", "instaboost", "--target", "0.5"], "--target is not a parameter of steering "
     "method 'instaboost'; its parameters: --boost"),
    (["--user", "**x**", "--steering", "spotlight", "--target", "0"], "target must be a share of attention"),
])
def test_bad_chat_input_exits_2_before_loading(monkeypatch, args, message):
    monkeypatch.setattr("attnsteer.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    result = CliRunner().invoke(app, ["chat", *args, "--model", "/never/loaded"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_the_comparison_caption_summarises_many_heads():
    from attnsteer.cli.main import describe_heads, describe_steering
    from attnsteer.heads import HeadConfig
    from attnsteer.steering.methods import InstaBoost, Pasta

    assert describe_heads(HeadConfig.parse("11.2,12.0")) == "heads 11.2,12.0"
    assert describe_heads(HeadConfig.parse("all", 30, 9)) == "270 heads in 30 layers"
    assert describe_steering(Pasta(HeadConfig.parse("all", 30, 9), 0.2, "include")) == (
        "pasta (270 heads in 30 layers, alpha 0.2, mode include)")
    assert describe_steering(Pasta(HeadConfig.parse("11.2"))) == "pasta (heads 11.2, alpha 0.01, mode exclude)"
    assert describe_steering(InstaBoost(3.0)) == "instaboost (boost 3.0)"


@pytest.mark.parametrize(("method", "parameters"), STEERING_CASES)
def test_each_steering_method_equals_the_library(model_dir, method, parameters):
    args = ["chat", "--system", SYSTEM, "--user", USER, "-e", "json format", *steering_args(method, parameters),
            "--max-new-tokens", "6", "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    steerer = Steerer(*load_model(str(model_dir)), method=method, **parameters)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    expected = steerer.chat(messages, substrings=["json format"], max_new_tokens=6)
    assert result.stdout == expected + "\n"
    assert expected != steerer.chat(messages, substrings=["json format"], max_new_tokens=6, steer=False)
    compared = CliRunner().invoke(app, [*args, "--compare"])
    assert compared.exit_code == 0 and squeezed(steerer.method.describe()) in squeezed(compared.stdout)
