"""`attnsteer serve` as a real process on a tiny model: it serves, and bad options exit 2 before loading."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.server.conftest import free_port

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
        assert answer["usage"]["completion_tokens"] >= 1
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert b"attnsteer playground" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_bad_alpha_exits_2_before_loading():
    from typer.testing import CliRunner

    from attnsteer.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--alpha", "3"])
    assert result.exit_code == 2
    assert "alpha must be in (0, 1]" in result.output
