"""From worker-thread events to asyncio: one stream per request, rows merged, OpenAI response bodies."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from attnsteer.server.engine import Event, Failed, Finished, GenerationJob, TextDelta
from attnsteer.server.metrics import RequestTimer
from attnsteer.server.schemas import usage


class GenerationFailed(RuntimeError):
    """The worker could not decode this request: `status` 500 (a fault) or 503 (shutting down)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)  # compared and hashed by identity (the app keeps a WeakSet of open streams)
class RequestStream:
    """Events of all rows of one request, as (row index, event), in the order the worker emits them.

    timer: the request's metrics (first text, latency and tokens when every row finished, else its outcome).
    """

    loop: asyncio.AbstractEventLoop
    rows: int
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    jobs: list[GenerationJob] = field(default_factory=list)
    timer: RequestTimer | None = None

    def emitter(self, index: int):
        """A thread-safe callback the worker calls with row `index`'s events."""
        return lambda event: self.loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))

    def cancel(self) -> None:
        """Stop decoding this request's rows (the decoder drops them at its next step)."""
        for job in self.jobs:
            job.cancelled.set()

    def fail(self, message: str, status: int) -> None:
        """From any thread: end the request now with `Failed` (shutdown does not wait for a model step)."""
        self.cancel()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (0, Failed(message, status)))

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        ends: list[Finished] = []
        try:
            while len(ends) < self.rows:
                index, event = await self.queue.get()
                if isinstance(event, Failed):
                    self._time("failed" if event.status == 500 else "unavailable")
                    raise GenerationFailed(event.message, event.status)
                if isinstance(event, Finished):
                    ends.append(event)
                elif self.timer is not None:
                    self.timer.first_text()
                yield index, event
            if self.timer is not None:
                self.timer.finished(sum(end.prompt_tokens for end in ends), sum(end.completion_tokens for end in ends))
        finally:
            self._time("cancelled")  # the reader stopped early (a no-op once the request is timed)

    def _time(self, outcome: str) -> None:
        if self.timer is not None:
            self.timer.failed(outcome)

    async def collect(self) -> tuple[list[str], list[Finished]]:
        """Each row's full text and its Finished event."""
        texts, ends = [""] * self.rows, [None] * self.rows
        async for index, event in self.events():
            if isinstance(event, TextDelta):
                texts[index] += event.text
            else:
                ends[index] = event
        return texts, ends  # type: ignore[return-value]


def total_usage(ends: list[Finished]) -> dict[str, int]:
    return usage(sum(end.prompt_tokens for end in ends), sum(end.completion_tokens for end in ends))


def envelope(kind: str, model: str) -> dict:
    prefix = "chatcmpl" if kind.startswith("chat") else "cmpl"
    return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()), "model": model}


def completion_body(model: str, texts: list[str], ends: list[Finished]) -> dict:
    choices = [{"index": i, "text": text, "logprobs": None, "finish_reason": end.reason}
               for i, (text, end) in enumerate(zip(texts, ends, strict=True))]
    return {**envelope("text_completion", model), "choices": choices, "usage": total_usage(ends)}


def chat_body(model: str, text: str, end: Finished) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
              "finish_reason": end.reason}
    return {**envelope("chat.completion", model), "choices": [choice], "usage": total_usage([end])}


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def stream_completion(stream: RequestStream, model: str, include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's text_completion chunk format, ending with [DONE]."""
    head, ends = envelope("text_completion", model), []
    async for chunk in _chunks(stream, ends, head, _completion_choice):
        yield chunk
    if include_usage:
        yield sse({**head, "choices": [], "usage": total_usage(ends)})
    yield sse("[DONE]")


async def stream_chat(stream: RequestStream, model: str, include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chat.completion.chunk format, ending with [DONE]."""
    head, ends = envelope("chat.completion.chunk", model), []
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    yield sse({**head, "choices": [first]})
    async for chunk in _chunks(stream, ends, head, _chat_choice):
        yield chunk
    if include_usage:
        yield sse({**head, "choices": [], "usage": total_usage(ends)})
    yield sse("[DONE]")


async def _chunks(stream: RequestStream, ends: list[Finished], head: dict, choice) -> AsyncIterator[str]:
    try:
        async for index, event in stream.events():
            if isinstance(event, TextDelta):
                yield sse({**head, "choices": [choice(index, event.text, None)]})
            else:
                ends.append(event)
                yield sse({**head, "choices": [choice(index, None, event.reason)]})
    except GenerationFailed as error:
        yield sse({"error": {"message": str(error), "type": "server_error", "param": None, "code": None}})
    finally:
        stream.cancel()  # the client went away, or we are done: stop decoding rows nobody reads


def _completion_choice(index: int, text: str | None, reason: str | None) -> dict:
    return {"index": index, "text": text or "", "logprobs": None, "finish_reason": reason}


def _chat_choice(index: int, text: str | None, reason: str | None) -> dict:
    delta = {"content": text} if text is not None else {}
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}
