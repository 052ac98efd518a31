"""An OpenAI-compatible HTTP server with per-request emphasis, and a web playground (`attnsteer serve`).

Needs the `server` extra (fastapi, uvicorn). `create_app(steerer)` builds the app; `run_server(app, host, port)`
runs it under uvicorn and stops promptly on a signal.
"""

from __future__ import annotations

from attnsteer.server.app import create_app
from attnsteer.server.run import run_server
from attnsteer.server.settings import ServerSettings, ServerSettingsError

__all__ = ["ServerSettings", "ServerSettingsError", "create_app", "run_server"]
