"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}; the server keeps serving."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from attnsteer.server.batching import QueueFullError
from attnsteer.server.request_error import RequestError
from attnsteer.server.streams import GenerationFailed

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1


def error_response(status: int, message: str, kind: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none"}


def validation_param(error: dict) -> str | None:
    """'messages[0].role' from pydantic's loc ('body', 'messages', 0, 'role'); None for the body itself.

    A union adds the member it tried to the loc ('str', 'list[...]', 'CharSpanField'): those are dropped.
    """
    text = ""
    for part in error.get("loc", ()):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "body" and "[" not in part and not part[:1].isupper() and part not in TYPE_NAMES:
            text += f".{part}" if text else part
    return text or None


MAX_REASONS = 3  # a union over a 10,000-item list reports one reason per item and member: say a few


def validation_message(errors: list[dict], param: str | None) -> str:
    """The reasons the value of `param` was refused (a union reports one per member), at most MAX_REASONS."""
    reasons = []
    for error in errors:
        where = validation_param(error)
        if param and where and where.startswith(param):
            reasons.append(f"{where}: {error.get('msg')}")
    reasons = list(dict.fromkeys(reasons))
    more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
    return " or ".join(reasons[:MAX_REASONS]) + more if reasons else str(errors[0].get("msg"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        param = validation_param(first)
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON body: {first.get('msg')}", "invalid_request_error")
        if param is None and first.get("type") == "model_attributes_type":
            return error_response(400, "the body must be a JSON object", "invalid_request_error")
        message = validation_message(error.errors(), param)
        if first.get("type") == "extra_forbidden":
            message = f"{param}: unknown field (not part of this API)"
        return error_response(400, message, "invalid_request_error", param)

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, error: RequestError) -> JSONResponse:
        code = "model_not_found" if error.param == "model" else None
        return error_response(404 if code else 400, str(error), "invalid_request_error", error.param, code)

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, error: QueueFullError) -> JSONResponse:
        return error_response(429, f"the server is busy ({error}); retry after {RETRY_AFTER_S} s",
                              "rate_limit_error", headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), "invalid_request_error")

    @app.exception_handler(GenerationFailed)
    async def generation_failed(request: Request, error: GenerationFailed) -> JSONResponse:
        if error.status == 503:
            return error_response(503, str(error), "server_error", headers={"Retry-After": str(RETRY_AFTER_S)})
        return error_response(500, f"generation failed: {error}", "server_error")
