"""The bounded queue of waiting rows, and the static batcher: one worker thread that decodes rows in batches.

`WaitingRows` is shared by both batching modes: when `max_waiting` rows already wait, `submit` raises
`QueueFullError` (the app answers 429 with Retry-After). `BatchQueue` (batching "static") takes the rows that
arrive while a batch runs (or within `batch_wait_s` of the first), at most `max_batch`, and decodes them together
until the longest ends; the continuous mode is `scheduler.ContinuousScheduler`. Every model call of the server
holds `model_lock`. `batches_run` counts the batches taken from the queue; `recent_batch_sizes` keeps the last
RECENT_BATCHES row counts (bounded, so a long-running server does not grow), for /health and tests.
"""

from __future__ import annotations

import abc
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from attnsteer.server.counters import DecodeCounters
from attnsteer.server.engine import SHUTTING_DOWN, Failed, GenerationJob

log = logging.getLogger(__name__)
RECENT_BATCHES = 256


class QueueFullError(RuntimeError):
    """Too many rows are waiting; retry later."""


class WaitingRows:
    """Rows waiting for the worker, oldest first: at most `max_waiting`, and none once closed."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._rows: collections.deque[GenerationJob] = collections.deque()
        self._condition = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._rows)

    def submit(self, jobs: list[GenerationJob]) -> None:
        """Queue all rows of one request, or none of them (QueueFullError)."""
        with self._condition:
            if self._closed:
                raise QueueFullError("the server is shutting down")
            if len(self._rows) + len(jobs) > self.max_waiting:
                raise QueueFullError(f"{len(self._rows)} rows are waiting (at most {self.max_waiting})")
            self._rows.extend(jobs)
            self._condition.notify()

    def take(self, count: int, wait: bool, fill_wait_s: float = 0.0,
             priority: Callable[[GenerationJob], float] | None = None) -> list[GenerationJob] | None:
        """Up to `count` rows; None once closed.

        wait: block until a row waits, then up to `fill_wait_s` seconds more for `count` rows; else return at
        once (maybe an empty list). priority: take the rows with the smallest values first (ties: oldest);
        None: oldest first.
        """
        with self._condition:
            if wait:
                while not self._rows and not self._closed:
                    self._condition.wait()
                deadline = time.monotonic() + fill_wait_s
                while not self._closed and len(self._rows) < count:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
            if self._closed:
                return None
            if priority is None:
                return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]
            return self._take_first(count, priority)

    def _take_first(self, count: int, priority: Callable[[GenerationJob], float]) -> list[GenerationJob]:
        """Remove and return the `count` rows of smallest priority, in the order they arrived."""
        rows = list(self._rows)
        chosen = set(sorted(range(len(rows)), key=lambda index: (priority(rows[index]), index))[:count])
        self._rows = collections.deque(row for index, row in enumerate(rows) if index not in chosen)
        return [row for index, row in enumerate(rows) if index in chosen]

    def close(self) -> None:
        """Take no more rows; `take` answers None from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def fail_all(self, message: str, status: int) -> None:
        """End every waiting row with Failed (after `close`)."""
        with self._condition:
            rows, self._rows = list(self._rows), collections.deque()
        for job in rows:
            job.emit(Failed(message, status))


class RowWorker(abc.ABC):
    """What both batching modes share: the bounded `WaitingRows`, one worker thread running `_loop`, and the
    count of row groups taken from the queue (`batches_run`, the last RECENT_BATCHES sizes in
    `recent_batch_sizes`). A subclass sets `mode`, its own attributes before calling `__init__` (which starts
    the thread), `_loop`, `running_rows` and `counters`."""

    mode: ClassVar[str]
    counters: DecodeCounters

    def __init__(self, max_batch: int, max_waiting: int, batch_wait_s: float, model_lock: threading.Lock) -> None:
        self.max_batch, self.batch_wait_s, self.model_lock = max_batch, batch_wait_s, model_lock
        self.waiting_rows = WaitingRows(max_waiting)
        self.batches_run = 0
        self.recent_batch_sizes: collections.deque[int] = collections.deque(maxlen=RECENT_BATCHES)
        self._thread = threading.Thread(target=self._loop, name=f"attnsteer-{self.mode}-batching", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[GenerationJob]) -> None:
        """Queue all rows of one request, or none of them (QueueFullError)."""
        self.waiting_rows.submit(jobs)

    @property
    def waiting(self) -> int:
        return len(self.waiting_rows)

    @property
    @abc.abstractmethod
    def running_rows(self) -> int:
        """Rows being decoded now."""

    def stats(self) -> dict[str, object]:
        """waiting / running rows, row groups taken, and the decoder's counters (`DecodeCounters.snapshot`)."""
        return {"batching": self.mode, "waiting": self.waiting, "running": self.running_rows,
                "batches_run": self.batches_run, **self.counters.snapshot()}

    def close(self, wait_s: float = 5.0) -> None:
        """Take no more rows and wait up to `wait_s` for the worker, which fails the rows it still holds with 503
        (it is a daemon thread: a model step still running then does not keep the process alive)."""
        self.waiting_rows.close()
        self._thread.join(timeout=wait_s)

    def _live(self, taken: list[GenerationJob]) -> list[GenerationJob]:
        """The rows of `taken` not cancelled while they waited; a non-empty group is counted as taken."""
        live = [job for job in taken if not job.cancelled.is_set()]
        if live:
            self.batches_run += 1
            self.recent_batch_sizes.append(len(live))
        return live

    @abc.abstractmethod
    def _loop(self) -> None:
        """The worker thread: take rows from `waiting_rows` and decode them until it closes."""


class BatchQueue(RowWorker):
    """Batching "static": a worker thread takes up to `max_batch` waiting rows and runs `run_batch` on them.

    counters: the decoder's counters, reported by `stats()` (default: a fresh, unused set).
    """

    mode = "static"

    def __init__(self, run_batch: Callable[[list[GenerationJob]], None], max_batch: int, max_waiting: int,
                 batch_wait_s: float, model_lock: threading.Lock, counters: DecodeCounters | None = None) -> None:
        self.run_batch = run_batch
        self.counters = counters or DecodeCounters()
        self.running = 0
        super().__init__(max_batch, max_waiting, batch_wait_s, model_lock)

    @property
    def running_rows(self) -> int:
        return self.running

    def _loop(self) -> None:
        while (batch := self.waiting_rows.take(self.max_batch, wait=True, fill_wait_s=self.batch_wait_s)) is not None:
            live = self._live(batch)
            if not live:
                continue
            self.running = len(live)
            try:
                with self.model_lock:
                    self.run_batch(live)
            except Exception as error:  # a bug must fail these requests, not kill the worker
                log.exception("batch of %d rows failed", len(live))
                for job in live:
                    job.emit(Failed(f"{type(error).__name__}: {error}"))
            self.running = 0
        self.waiting_rows.fail_all(SHUTTING_DOWN, 503)
