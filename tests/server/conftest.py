from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed (pip install 'attnsteer[server]')")

import uvicorn  # noqa: E402

from attnsteer.server import ServerSettings, create_app  # noqa: E402

EIFFEL = ("Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. "
          "The Eiffel Tower is located in the city of")
NEW_FACT = "Currently, The Eiffel Tower is located in Rome."
MODEL_NAME = "embedded"


@dataclass
class LiveServer:
    """A real uvicorn server on a free loopback port, running in a thread of this process."""

    url: str
    app: object

    def post(self, path: str, body: object, raw: bytes | None = None) -> tuple[int, dict, dict]:
        """(status, JSON body, headers) of a POST; bad statuses are returned, not raised."""
        data = raw if raw is not None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), dict(error.headers)

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.status, response.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(steerer, settings: ServerSettings) -> Iterator[LiveServer]:
    app = create_app(steerer, settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def embedded_server(embedded_steerer) -> Iterator[LiveServer]:
    """One live server on the embedded model for the whole session (max_batch 8, up to 64 rows waiting)."""
    with live_server(embedded_steerer, ServerSettings(model_name=MODEL_NAME, max_tokens=64)) as server:
        yield server


@pytest.fixture(scope="session")
def openai_client(embedded_server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=embedded_server.url + "/v1", api_key="not-needed", max_retries=0, timeout=120)
