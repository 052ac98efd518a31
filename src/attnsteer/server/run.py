"""Run the app under uvicorn, stopping promptly on SIGINT / SIGTERM.

uvicorn alone waits for every open request before it shuts the app down, and a long generation
keeps a request open. Here the signal first tells the app to stop decoding (`ServerCore.shut_down`:
running rows end with 503 at their next step, waiting rows at once), so open requests are answered
within a step and the process exits; `timeout_graceful_shutdown` bounds whatever is left.
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

GRACEFUL_SHUTDOWN_S = 3


class _PromptServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.attnsteer_app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        # shut_down joins the worker thread: never block the signal handler (the event loop's thread) on it
        threading.Thread(target=self.attnsteer_app.state.core.shut_down, daemon=True).start()
        super().handle_exit(sig, frame)


def run_server(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    """Serve `app` (from `create_app`) until a signal; returns once the process may exit."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    _PromptServer(config, app).run()
