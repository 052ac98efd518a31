"""The front deployment's HTTP app: reads the body, computes its affinity key, forwards to a model replica.

Ray's HTTP proxy hands a request to a deployment before reading its body, so a request router cannot see the
prompt; this small app (no model) reads it, computes `affinity.affinity_key`, and calls the model replicas'
`forward` with `affinity_key=` for `ContextAffinityRouter` to route on. The replica's response (status,
headers, body chunks) streams back unchanged: its 400s, 404s and 429s (with Retry-After) are the single
process's. What only a cluster has is mapped here:

- the replica died or stopped before answering (killed, node lost, restarting; no replica running):
  503 with an OpenAI error body, `code: "replica_unavailable"`, and `Retry-After: 1`; a stream cut off midway
  ends with an `error` event, as a failed row does in one process;
- `GET /health` asks every replica (Ray's broadcast) and aggregates: `status` "ok" (all answered),
  "degraded" (some did), 503 "unavailable" (none), each replica's own health under `replicas`, and the
  prefix-cache counters summed under `prefix_cache`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from attnsteer.server.cluster.affinity import affinity_key
from attnsteer.server.cluster.bridge import ForwardedRequest, ResponseStart
from attnsteer.server.limits import BodySizeLimit

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 10.0
RETRY_AFTER_S = 1
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SUMMED = ("hits", "misses", "hit_tokens", "prefilled_tokens", "refused", "blocks", "bytes", "max_bytes", "evictions")


def front_app(replicas: DeploymentHandle, max_body_bytes: int) -> Starlette:
    """The front's ASGI app over the model deployment's handle (body limit as in one process)."""

    async def health(request: Request) -> Response:
        return await aggregated_health(replicas)

    async def forward(request: Request) -> Response:
        return await forward_request(replicas, request)

    app = Starlette(routes=[Route("/health", health, methods=["GET"]),
                            Route("/{path:path}", forward, methods=METHODS)])
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


async def forward_request(replicas: DeploymentHandle, request: Request) -> Response:
    """Send `request` to the replica its affinity key ranks first; its response streams back."""
    body = await request.body()
    client = request.scope.get("client")
    forwarded = ForwardedRequest(request.method, request.url.path, request.scope.get("query_string", b""),
                                 tuple(request.scope.get("headers", ())), body, tuple(client) if client else None)
    key = affinity_key(forwarded.path, body) if request.method == "POST" else None
    pieces = replicas.options(stream=True, method_name="forward").remote(forwarded, affinity_key=key)
    try:
        start = await pieces.__anext__()
    except asyncio.CancelledError:  # the client went away while the replica worked: stop it
        pieces.cancel()
        raise
    except Exception as error:  # every Ray failure is answered, none is a crash of the front
        return failure_response(error)
    if not isinstance(start, ResponseStart):
        raise TypeError(f"a replica's forward must yield a ResponseStart first, got {type(start).__name__}")
    return StreamingResponse(body_of(pieces, start), status_code=start.status, headers=dict(start.headers))


async def body_of(pieces: DeploymentResponseGenerator, start: ResponseStart) -> AsyncIterator[bytes]:
    """The replica's body chunks; a stream cut off by a failing replica ends with an error event."""
    finished = False
    try:
        async for chunk in pieces:
            yield chunk
        finished = True
    except Exception as error:
        log.warning("a replica stopped in the middle of a response: %s", error)
        if (start.header("content-type") or "").startswith("text/event-stream"):
            yield f"data: {json.dumps(error_body(retry_message(error), 'replica_unavailable'))}\n\n".encode()
    finally:
        if not finished:
            pieces.cancel()


def failure_response(error: Exception) -> JSONResponse:
    """A replica's call failed before its response began: 500 for a fault inside the replica's code, else
    (replica dead, restarting, none running) 503 with Retry-After, which clients retry."""
    if isinstance(error, RayTaskError):
        log.error("a replica failed: %s", error)
        return JSONResponse(error_body(f"the replica failed: {one_line(error)}", None), status_code=500)
    log.warning("no replica answered: %r", error)
    return JSONResponse(error_body(retry_message(error), "replica_unavailable"), status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def retry_message(error: Exception) -> str:
    return (f"the replica serving this request became unavailable ({type(error).__name__}); retry after "
            f"{RETRY_AFTER_S} s")


def error_body(message: str, code: str | None) -> dict[str, Any]:
    """OpenAI's error shape, as `attnsteer.server.errors` writes it."""
    return {"error": {"message": message, "type": "server_error", "param": None, "code": code}}


def one_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


async def aggregated_health(replicas: DeploymentHandle) -> JSONResponse:
    """Every replica's /health (see the module docstring)."""
    try:
        answers = await replicas.broadcast("health").results_async(timeout_s=HEALTH_TIMEOUT_S,
                                                                   return_exceptions=True)
    except Exception as error:  # no replica running, or the broadcast timed out
        answers = [error]
    healthy = [answer for answer in answers if isinstance(answer, dict)]
    caches = [answer["prefix_cache"] for answer in healthy if answer.get("prefix_cache")]
    status = "unavailable" if not healthy else "ok" if len(healthy) == len(answers) else "degraded"
    body = {"status": status, "model": healthy[0].get("model") if healthy else None,
            "replicas": sorted(healthy, key=lambda answer: str(answer.get("replica"))),
            "unreachable": len(answers) - len(healthy),
            "waiting_rows": sum(answer.get("waiting_rows", 0) for answer in healthy),
            "prefix_cache": {name: sum(cache.get(name, 0) for cache in caches) for name in SUMMED} if caches else None}
    return JSONResponse(body, status_code=200 if healthy else 503)
