"""One HTTP request through an ASGI app in this process, its response as a stream of pieces (no Ray).

A replica holds the same app a single process serves (`create_app`); the front deployment hands it the
request as a `ForwardedRequest` (method, path, query, headers, body: plain data that pickles), and
`call_app` yields a `ResponseStart` (status, headers) and then the body's chunks as the app sends them, so a
server-sent-events stream flows through chunk by chunk. When the reader stops early (the client went away,
the front cancelled the call) the app sees `http.disconnect`, exactly as under uvicorn, and drops the rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message

log = logging.getLogger(__name__)
STOP_WAIT_S = 2.0  # how long a disconnected app may take to notice and return (it polls every 0.25 s)
_DONE: Message = {"type": "attnsteer.done"}


@dataclass(frozen=True)
class ForwardedRequest:
    """An HTTP request as data. headers: (name, value) pairs, names lower-case, as ASGI has them."""

    method: str
    path: str
    query_string: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    client: tuple[str, int] | None = None

    def scope(self) -> dict:
        """The ASGI HTTP scope of this request."""
        return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                "method": self.method, "scheme": "http", "path": self.path, "raw_path": self.path.encode(),
                "query_string": self.query_string, "root_path": "", "headers": list(self.headers),
                "client": self.client, "server": ("attnsteer-replica", 0), "state": {}}


@dataclass(frozen=True)
class ResponseStart:
    """The status and headers of a response (before its body chunks)."""

    status: int
    headers: tuple[tuple[str, str], ...] = field(default=())

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


async def call_app(app: ASGIApp, request: ForwardedRequest) -> AsyncIterator[ResponseStart | bytes]:
    """Run `request` through `app`: one ResponseStart, then the body's non-empty chunks.

    An app that fails before starting its response yields a 500 with an OpenAI-style error body.
    """
    messages: asyncio.Queue[Message] = asyncio.Queue()
    disconnected = asyncio.Event()
    task = asyncio.ensure_future(_run(app, request, messages, disconnected))
    started = False
    try:
        while (message := await messages.get()) is not _DONE:
            if message["type"] == "http.response.start":
                started = True
                yield ResponseStart(message["status"], tuple((key.decode("latin-1"), value.decode("latin-1"))
                                                             for key, value in message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    return
        if not started:
            yield ResponseStart(500, (("content-type", "application/json"),))
            yield b'{"error": {"message": "the replica failed to answer", "type": "server_error", ' \
                  b'"param": null, "code": null}}'
    finally:
        disconnected.set()
        await _finish(task)


async def _run(app: ASGIApp, request: ForwardedRequest, messages: asyncio.Queue[Message],
               disconnected: asyncio.Event) -> None:
    """The app's call: its body sent once, then `http.disconnect` when the reader is gone; `_DONE` at the end."""
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        await messages.put(message)

    try:
        await app(request.scope(), receive, send)
    except Exception:  # the app's error handlers answered what they could; the reader gets _DONE
        log.exception("the app failed on %s %s", request.method, request.path)
    finally:
        await messages.put(_DONE)


async def _finish(task: asyncio.Future) -> None:
    """Let the app return after a disconnect (it cancels its rows), then give up on it."""
    if not task.done():
        await asyncio.wait({task}, timeout=STOP_WAIT_S)
    if not task.done():
        task.cancel()
