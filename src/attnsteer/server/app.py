"""`create_app(steerer)`: the FastAPI app. Everything it needs lives on `app.state`, nothing in module globals."""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from attnsteer.chat import has_chat_template
from attnsteer.context.prefix_cache import PrefixCache, prefill
from attnsteer.model_info import model_identity
from attnsteer.server.attention_view import attention_view
from attnsteer.server.batching import BatchQueue, QueueFullError
from attnsteer.server.engine import BatchGenerator, GenerationJob
from attnsteer.server.errors import install_error_handlers
from attnsteer.server.limits import BodySizeLimit, ClientGone, collect_unless_disconnected
from attnsteer.server.metrics import CONTENT_TYPE, ServerMetrics
from attnsteer.server.prefill import PrefillFunction
from attnsteer.server.prompts import PreparedPrompt, prepare_attention, prepare_chat, prepare_completion
from attnsteer.server.request_error import RequestError
from attnsteer.server.scheduler import ContinuousDecoder, ContinuousScheduler
from attnsteer.server.schemas import AttentionRequest, ChatCompletionRequest, CompletionRequest, SamplingFields
from attnsteer.server.settings import ServerSettings
from attnsteer.server.steering_request import steering_methods
from attnsteer.server.streams import (
    RequestStream,
    chat_body,
    completion_body,
    stream_chat,
    stream_completion,
)
from attnsteer.steerer import Steerer

STATIC = Path(__file__).parent / "static"
T = TypeVar("T")
SHUTTING_DOWN = "the server is shutting down"


class ServerCore:
    """The steerer, the limits, the model and tokenizer locks, the decoder and the batch queue of one app.

    `settings.batching` picks the pair: "static" (`BatchGenerator` + `BatchQueue`) or "continuous"
    (`ContinuousDecoder` + `ContinuousScheduler`); both queues answer `submit`, `waiting`, `batches_run`,
    `stats()` and `close()`, both decoders `stop()`.
    """

    def __init__(self, steerer: Steerer, settings: ServerSettings) -> None:
        self.steerer, self.settings = steerer, settings
        self.model_name = settings.model_name or model_identity(steerer.model)
        # The test attnsteer.chat.render_chat applies: without a template, chat gets the plain one.
        self.has_chat_template = has_chat_template(steerer.tokenizer)
        self.model_lock = threading.Lock()
        self.tokenizer_lock = threading.Lock()  # a fast tokenizer's settings change per call: one call at a time
        self.generator: BatchGenerator | ContinuousDecoder
        self.prefix_cache: PrefixCache | None = None
        self.queue: BatchQueue | ContinuousScheduler
        if settings.batching == "static":
            self.generator = BatchGenerator(steerer.model, steerer.tokenizer)
            self.queue = BatchQueue(self.generator.run, settings.max_batch, settings.max_waiting,
                                    settings.batch_wait_s, self.model_lock, self.generator.counters)
        else:
            self.generator = ContinuousDecoder(steerer.model, steerer.tokenizer, self._prefill())
            self.queue = ContinuousScheduler(self.generator, settings.max_batch, settings.max_waiting,
                                             settings.batch_wait_s, self.model_lock)
        self.streams: weakref.WeakSet[RequestStream] = weakref.WeakSet()  # requests being answered
        self.metrics = ServerMetrics(self.queue.stats, self.prefix_cache.stats if self.prefix_cache else None)

    def _prefill(self) -> PrefillFunction:
        """The continuous decoder's prefill: through the steered prefix cache unless its budget is 0."""
        budget = self.settings.prefix_cache_bytes
        self.prefix_cache = PrefixCache(budget) if budget > 0 else None
        return functools.partial(prefill, prefix_cache=self.prefix_cache)

    async def prepare(self, prepare_rows: Callable[[Any, Steerer, ServerSettings], T], body: Any) -> T:
        """Run span search and tokenisation off the event loop (they can take a while on a long prompt)."""
        def run() -> T:
            with self.tokenizer_lock:
                return prepare_rows(body, self.steerer, self.settings)

        return await run_in_threadpool(run)

    def shut_down(self) -> None:
        """Stop promptly: every open request is answered 503 now (not after the model's current step),
        running rows are dropped at their next step, waiting rows at once."""
        for stream in list(self.streams):
            stream.fail(SHUTTING_DOWN, 503)
        self.generator.stop()
        self.queue.close()

    def check_model(self, name: str) -> None:
        if name != self.model_name:
            raise RequestError("model", f"model {name!r} is not served here; this server serves {self.model_name!r}")

    def max_tokens(self, asked: int | None) -> int:
        if asked is None:
            return self.settings.default_max_tokens
        if asked > self.settings.max_tokens:
            raise RequestError("max_tokens", f"max_tokens {asked} is above this server's limit "
                                             f"{self.settings.max_tokens}")
        return asked

    def submit(self, rows: list[PreparedPrompt], fields: SamplingFields, max_tokens: int,
               endpoint: str) -> RequestStream:
        """Queue the rows (all or none: QueueFullError) and return the stream of their events; `endpoint`
        ("completions", "chat") labels the request's metrics."""
        timer = self.metrics.request(endpoint)
        stream = RequestStream(asyncio.get_running_loop(), len(rows), timer=timer)
        stream.jobs = [GenerationJob(row, max_tokens, stream.emitter(index), fields.temperature, fields.top_p,
                                     fields.seed) for index, row in enumerate(rows)]
        try:
            self.queue.submit(stream.jobs)
        except QueueFullError:
            timer.failed("queue_full")
            raise
        self.streams.add(stream)
        return stream


def create_app(steerer: Steerer, settings: ServerSettings | None = None) -> FastAPI:
    """An OpenAI-compatible app serving `steerer`'s model with per-request emphasis, and the playground at /."""
    core = ServerCore(steerer, settings or ServerSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(core.shut_down)

    app = FastAPI(title="attnsteer", description="Attention steering behind the OpenAI API", lifespan=lifespan)
    app.state.core = core
    app.add_middleware(BodySizeLimit, max_bytes=core.settings.max_body_bytes)
    install_error_handlers(app)
    add_routes(app, core)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def add_routes(app: FastAPI, core: ServerCore) -> None:
    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": core.model_name, "waiting_rows": core.queue.waiting,
                "max_batch": core.settings.max_batch, "batches_run": core.queue.batches_run,
                "batching": core.settings.batching,
                "prefix_cache": core.prefix_cache.stats() if core.prefix_cache is not None else None}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus' text format (`server.metrics`): latency, time to first token, tokens, queue depth, batch
        sizes, tokens/s, prefix-cache hits / misses / bytes."""
        return Response(core.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict:
        entry = {"id": core.model_name, "object": "model", "created": 0, "owned_by": "attnsteer"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        core.check_model(body.model)
        max_tokens = core.max_tokens(body.max_tokens)
        rows = await core.prepare(prepare_completion, body)
        stream = core.submit(rows, body, max_tokens, "completions")
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(stream_completion(stream, core.model_name, include_usage),
                                     media_type="text/event-stream")
        try:
            texts, ends = await collect_unless_disconnected(stream, request)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; the rows were dropped
        return completion_body(core.model_name, texts, ends)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        core.check_model(body.model)
        if body.max_tokens is not None and body.max_completion_tokens is not None:
            raise RequestError("max_completion_tokens", "give max_tokens or max_completion_tokens, not both")
        max_tokens = core.max_tokens(body.max_completion_tokens or body.max_tokens)
        row = await core.prepare(prepare_chat, body)
        stream = core.submit([row], body, max_tokens, "chat")
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(stream_chat(stream, core.model_name, include_usage),
                                     media_type="text/event-stream")
        try:
            texts, ends = await collect_unless_disconnected(stream, request)
        except ClientGone:
            return Response(status_code=499)
        return chat_body(core.model_name, texts[0], ends[0])

    @app.post("/v1/attention")
    async def attention(body: AttentionRequest) -> dict:
        """Not in OpenAI's API: the steered heads' attention share on the emphasis, plain vs steered."""
        prompt = await core.prepare(prepare_attention, body)

        def run() -> dict:
            with core.model_lock:
                return attention_view(core.steerer.model, core.steerer.tokenizer, prompt)

        return await run_in_threadpool(run)

    @app.get("/v1/playground/info")
    async def playground_info() -> dict:
        """Not in OpenAI's API: the served model, whether chat uses its template, the steering methods a request
        may name (with their parameters' defaults) and the server's default steering."""
        return {"model": core.model_name, "chat_template": core.has_chat_template,
                "steering_methods": steering_methods(), "steering_default": core.steerer.method.to_dict()}

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(STATIC / "index.html")

