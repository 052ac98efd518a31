"""Prometheus metrics of one server (`GET /metrics`, prometheus-client's text format).

Two kinds, in one registry per app (so two apps in one process never share counters):
- observed per request (`ServerMetrics.request`): latency and time to first token histograms, requests by
  endpoint and outcome, prompt and generated tokens;
- read at scrape time from what the server already counts (`SchedulerCollector`): the decoder's queue depth,
  running rows, decode steps, recent batch sizes and tokens/s, and the steered prefix cache's hits, misses and
  bytes. Nothing is copied on the hot path.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
TOKENS_WINDOW_S = 30.0  # tokens/s is measured over the last TOKENS_WINDOW_S seconds


@dataclass
class TokenRate:
    """Generated tokens per second over a sliding window (thread-safe)."""

    window_s: float = TOKENS_WINDOW_S
    _events: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, tokens: int, now: float | None = None) -> None:
        with self._lock:
            self._events.append((time.monotonic() if now is None else now, tokens))

    def per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._events and self._events[0][0] < now - self.window_s:
                self._events.popleft()
            return sum(tokens for _, tokens in self._events) / self.window_s


class SchedulerCollector(Collector):
    """Gauges and counters read at scrape time from `stats()` callables (missing keys are left out)."""

    def __init__(self, decoder_stats: Callable[[], dict[str, Any]], cache_stats: Callable[[], dict[str, Any]] | None,
                 rate: TokenRate) -> None:
        self.decoder_stats, self.cache_stats, self.rate = decoder_stats, cache_stats, rate

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self.decoder_stats()
        gauges = {"waiting": ("attnsteer_queue_waiting_rows", "Rows waiting to join a batch"),
                  "running": ("attnsteer_batch_running_rows", "Rows in the running batch")}
        for key, (name, text) in gauges.items():
            if key in stats:
                yield GaugeMetricFamily(name, text, value=stats[key])
        sizes = list(stats.get("recent_step_sizes", ()))
        yield GaugeMetricFamily("attnsteer_batch_size_recent_mean", "Mean rows per recent decode step",
                                value=sum(sizes) / len(sizes) if sizes else 0.0)
        yield GaugeMetricFamily("attnsteer_generated_tokens_per_second",
                                f"Generated tokens per second over the last {TOKENS_WINDOW_S:g} s",
                                value=self.rate.per_second())
        counters = {"steps": ("attnsteer_decode_steps", "Decode steps run"),
                    "rows_admitted": ("attnsteer_rows_admitted", "Rows that started decoding"),
                    "rows_finished": ("attnsteer_rows_finished", "Rows that ended with their reply"),
                    "rows_failed": ("attnsteer_rows_failed", "Rows that ended with an error"),
                    "rows_cancelled": ("attnsteer_rows_cancelled", "Rows dropped because their client went away"),
                    "reused_prompt_tokens": ("attnsteer_reused_prompt_tokens",
                                             "Prompt tokens read from the prefix cache instead of computed")}
        for key, (name, text) in counters.items():
            if key in stats:
                yield CounterMetricFamily(name, text, value=stats[key])
        yield from self._cache()

    def _cache(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self.cache_stats is None:
            return
        stats = self.cache_stats()
        for key in ("hits", "misses", "hit_tokens", "prefilled_tokens", "refused", "evictions"):
            if key in stats:
                yield CounterMetricFamily(f"attnsteer_prefix_cache_{key}", f"Steered prefix cache {key}",
                                          value=stats[key])
        for key in ("bytes", "max_bytes", "blocks"):
            if key in stats:
                yield GaugeMetricFamily(f"attnsteer_prefix_cache_{key}", f"Steered prefix cache {key}",
                                        value=stats[key])


class ServerMetrics:
    """The metrics of one app: per-request histograms and counters, and the scrape-time collector."""

    def __init__(self, decoder_stats: Callable[[], dict[str, Any]],
                 cache_stats: Callable[[], dict[str, Any]] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.rate = TokenRate()
        self.latency = Histogram("attnsteer_request_latency_seconds", "Request latency, queueing included",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_token = Histogram("attnsteer_time_to_first_token_seconds", "Time to the first generated text",
                                     ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.requests = Counter("attnsteer_requests", "Requests answered, by endpoint and outcome",
                                ["endpoint", "outcome"], registry=self.registry)
        self.tokens = Counter("attnsteer_tokens", "Tokens processed, by kind (prompt or generated)", ["kind"],
                              registry=self.registry)
        self.registry.register(SchedulerCollector(decoder_stats, cache_stats, self.rate))

    def request(self, endpoint: str) -> RequestTimer:
        """A timer for one request, started now."""
        return RequestTimer(self, endpoint, time.monotonic())

    def rejected(self, endpoint: str, outcome: str) -> None:
        """Count a request refused before it was queued (outcome: e.g. "queue_full")."""
        self.requests.labels(endpoint, outcome).inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return generate_latest(self.registry)


@dataclass
class RequestTimer:
    """Times one request: `first_text()` at its first generated text, `finished(...)` or `failed()` once."""

    metrics: ServerMetrics
    endpoint: str
    started: float
    _first_seen: bool = False
    _done: bool = False

    def first_text(self) -> None:
        if not self._first_seen:
            self._first_seen = True
            self.metrics.first_token.labels(self.endpoint).observe(time.monotonic() - self.started)

    def finished(self, prompt_tokens: int, completion_tokens: int) -> None:
        if self._end("ok"):
            self.metrics.latency.labels(self.endpoint).observe(time.monotonic() - self.started)
            self.metrics.tokens.labels("prompt").inc(prompt_tokens)
            self.metrics.tokens.labels("generated").inc(completion_tokens)
            self.metrics.rate.add(completion_tokens)

    def failed(self, outcome: str = "failed") -> None:
        self._end(outcome)

    def _end(self, outcome: str) -> bool:
        if self._done:
            return False
        self._done = True
        self.metrics.requests.labels(self.endpoint, outcome).inc()
        return True
