"""An OpenAI-compatible HTTP server with per-request emphasis, and a web playground (`attnsteer serve`).

Needs the `server` extra (fastapi, uvicorn). `create_app(steerer)` builds the app; `serve` runs it.
"""

from __future__ import annotations

from attnsteer.server.app import create_app
from attnsteer.server.settings import ServerSettings, ServerSettingsError

__all__ = ["ServerSettings", "ServerSettingsError", "create_app"]
