"""`attnsteer serve` as a real process on a tiny model: it serves, its steering options make the default steerer,
and bad options exit 2 before loading."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app
from attnsteer.steering.methods import PROFILING_FREE_DEFAULT, method_defaults
from tests.server.conftest import free_port
from tests.tiny_models import tiny_model

ATTNSTEER = str(Path(sys.executable).with_name("attnsteer"))


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError("attnsteer serve did not come up")


def test_serve_a_model_directory(tiny_model_dir):
    port = free_port()
    command = [ATTNSTEER, "serve", "--model", str(tiny_model_dir("llama")), "--heads", "1", "--port", str(port),
               "--max-batch", "2", "--max-tokens", "8", "--model-name", "tiny"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for_health(url, process)
        assert health["model"] == "tiny" and health["max_batch"] == 2
        body = {"model": "tiny", "prompt": "The Eiffel Tower is located in Paris.", "max_tokens": 3,
                "emphasis": ["Paris"]}
        request = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        library = Steerer(*load_model(str(tiny_model_dir("llama"))), heads="1")
        assert answer["choices"][0]["text"] == library.generate(body["prompt"], emphasize=["Paris"], max_new_tokens=3)
        assert answer["choices"][0]["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 3
        assert answer["usage"]["prompt_tokens"] == len(library.tokenizer(body["prompt"])["input_ids"])
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert b"attnsteer playground" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def never_loads(monkeypatch):
    """Fail the test if `serve` loads a model."""
    def load(*args, **kwargs):
        pytest.fail(f"a model was loaded ({args}, {kwargs}) although the input is bad")

    monkeypatch.setattr("attnsteer.models.load_model", load)


BAD_OPTIONS = [
    (["--alpha", "3"], "alpha must be in (0, 1]"),
    (["--steering", "pastaa"], "unknown steering method 'pastaa'; choose one of 'pasta', 'instaboost', 'spotlight'; "
     "did you mean 'pasta'?"),
    (["--steering", "instaboost", "--boost", "0.5"], "boost must be >= 1"),
    (["--steering", "instaboost", "--alpha", "0.1"], "--alpha is not a parameter of steering method 'instaboost'; "
     "its parameters: --boost"),
    (["--steering", "spotlight", "--heads", "1"], "--heads is not a parameter of steering method 'spotlight'; its "
     "parameters: --target, --granularity"),
    (["--alpha", "0.1", "--boost", "3"], "--alpha, --boost belong to different steering methods"),
    (["--steering", "pasta", "--mode", "boost"], "mode must be one of ('exclude', 'include')"),
    (["--target", "1"], "target must be a share of attention in (0, 1)"),
    (["--steering", "spotlight", "--granularity", "token"], "granularity must be one of ('layer', 'head')"),
    (["--boost", "nan"], "boost must be a finite number"),
    (["--batching", "dynamic"], "batching must be one of ('continuous', 'static'), got 'dynamic'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_OPTIONS, ids=[" ".join(args) for args, _ in BAD_OPTIONS])
def test_bad_steering_options_exit_2_on_one_line_before_loading(never_loads, args, message):
    result = CliRunner().invoke(app, ["serve", *args, "--model", "/never/loaded"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(("args", "default"), [
    (["--heads", "1", "--alpha", "0.1", "--mode", "include"], {"method": "pasta", "heads": "1.0,1.1,1.2,1.3",
                                                                "alpha": 0.1, "mode": "include"}),
    (["--steering", "instaboost", "--boost", "3"], {"method": "instaboost", "boost": 3.0}),
    (["--target", "0.4", "--granularity", "head"], {"method": "spotlight", "target": 0.4, "granularity": "head"}),
    (["--steering", "spotlight"], {"method": "spotlight", **method_defaults("spotlight")}),
    ([], {"method": PROFILING_FREE_DEFAULT, **method_defaults(PROFILING_FREE_DEFAULT)}),  # no shipped head set
], ids=["pasta", "instaboost", "spotlight by its options", "spotlight's defaults", "the model's default"])
def test_steering_options_make_the_default_steerer(monkeypatch, tokenizer, args, default):
    served = []
    monkeypatch.setattr("attnsteer.models.load_model", lambda model: (tiny_model("llama"), tokenizer))
    monkeypatch.setattr("attnsteer.server.run.run_server", lambda app, host, port: served.append(app))
    result = CliRunner().invoke(app, ["serve", *args, "--model", "tiny"])
    assert result.exit_code == 0, result.output
    assert served[0].state.core.steerer.method.to_dict() == default
    assert f"steering with {served[0].state.core.steerer.method.describe()} by default" in result.stderr


@pytest.mark.parametrize("args", [["--batching", "static"], ["--batching", "continuous"], []])
def test_batching_option_picks_the_scheduler(monkeypatch, tokenizer, args):
    served = []
    monkeypatch.setattr("attnsteer.models.load_model", lambda model: (tiny_model("llama"), tokenizer))
    monkeypatch.setattr("attnsteer.server.run.run_server", lambda app, host, port: served.append(app))
    result = CliRunner().invoke(app, ["serve", *args, "--model", "tiny"])
    assert result.exit_code == 0, result.output
    core = served[0].state.core
    assert core.settings.batching == core.queue.stats()["batching"] == (args[1] if args else "continuous")
    core.shut_down()


def test_sigterm_under_load_stops_the_server_promptly(tiny_model_dir):
    """In-flight long generations are failed cleanly (503) and the process exits within seconds of SIGTERM."""
    port = free_port()
    command = [ATTNSTEER, "serve", "--model", str(tiny_model_dir("llama")), "--heads", "1", "--port", str(port),
               "--max-batch", "2", "--max-tokens", "5000", "--model-name", "tiny"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    answers: list[object] = []
    try:
        wait_for_health(url, process)
        body = json.dumps({"model": "tiny", "prompt": "Paris Paris", "max_tokens": 5000}).encode()

        def long_request():
            request = urllib.request.Request(url + "/v1/completions", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    answers.append(response.status)
            except urllib.error.HTTPError as error:
                answers.append((error.code, json.loads(error.read())["error"]["message"]))
            except (urllib.error.URLError, ConnectionError) as error:
                answers.append(error)

        threads = [threading.Thread(target=long_request) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while wait_for_health(url, process)["batches_run"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # decoding is under way, one row waits
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        stopped_after = time.monotonic() - signalled
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert stopped_after < 10, stopped_after  # was: ran on until every generation finished (or SIGKILL)
    assert len(answers) == 3
    assert all(answer[0] == 503 and "shutting down" in answer[1] for answer in answers), answers
