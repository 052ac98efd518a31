"""Request limits enforced before a body is parsed, and leaving work nobody waits for.

- `BodySizeLimit`: an ASGI middleware answering 413 (OpenAI-style body) once a request body passes
  `max_bytes` (by its Content-Length, or counted as it streams in), before FastAPI parses any of it.
- `collect_unless_disconnected`: waits for a non-streaming request's rows, and cancels them (the
  decoder drops cancelled rows at its next step) when the client goes away first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnsteer.server.streams import RequestStream

DISCONNECT_POLL_S = 0.25


class ClientGone(Exception):
    """The client of a non-streaming request disconnected before its reply was ready."""


class BodySizeLimit:
    """Refuse request bodies larger than `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = {"error": {"message": f"the request body is larger than this server's limit of {self.max_bytes} "
                                     "bytes", "type": "invalid_request_error", "param": None, "code": None}}
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    pass


async def collect_unless_disconnected(stream: RequestStream, request: Request) -> tuple[list[str], list[Any]]:
    """`stream.collect()`, or ClientGone (with the rows cancelled) if the client disconnects first."""
    task = asyncio.ensure_future(stream.collect())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone
    finally:
        if not task.done():
            stream.cancel()
            task.cancel()
