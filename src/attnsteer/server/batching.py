"""A bounded queue of rows and one worker thread that decodes them in batches.

Rows that arrive while a batch runs (or within `batch_wait_s` of the first) are decoded together,
at most `max_batch` at a time. When `max_waiting` rows already wait, `submit` raises `QueueFullError`
(the app answers 429 with Retry-After). Every model call of the server holds `model_lock`.
`batches_run` counts the batches decoded; `recent_batch_sizes` keeps the last RECENT_BATCHES row counts
(bounded, so a long-running server does not grow), for /health and tests.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from attnsteer.server.engine import Failed, GenerationJob

log = logging.getLogger(__name__)
RECENT_BATCHES = 256


class QueueFullError(RuntimeError):
    """Too many rows are waiting; retry later."""


class BatchQueue:
    def __init__(self, run_batch: Callable[[list[GenerationJob]], None], max_batch: int, max_waiting: int,
                 batch_wait_s: float, model_lock: threading.Lock) -> None:
        self.run_batch, self.max_batch, self.max_waiting = run_batch, max_batch, max_waiting
        self.batch_wait_s = batch_wait_s
        self.model_lock = model_lock
        self._waiting: collections.deque[GenerationJob] = collections.deque()
        self._condition = threading.Condition()
        self._closed = False
        self.batches_run = 0
        self.recent_batch_sizes: collections.deque[int] = collections.deque(maxlen=RECENT_BATCHES)
        self._thread = threading.Thread(target=self._loop, name="attnsteer-batcher", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[GenerationJob]) -> None:
        """Queue all rows of one request, or none of them (QueueFullError)."""
        with self._condition:
            if self._closed:
                raise QueueFullError("the server is shutting down")
            if len(self._waiting) + len(jobs) > self.max_waiting:
                raise QueueFullError(f"{len(self._waiting)} rows are waiting (at most {self.max_waiting})")
            self._waiting.extend(jobs)
            self._condition.notify()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def close(self, wait_s: float = 5.0) -> None:
        """Take no more rows, fail the waiting ones, and wait up to `wait_s` for the running batch (the
        worker is a daemon thread: a model step still running then does not keep the process alive)."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout=wait_s)

    def _take_batch(self) -> list[GenerationJob]:
        """Block until rows wait; then wait up to batch_wait_s for a full batch. [] once closed."""
        with self._condition:
            while not self._waiting and not self._closed:
                self._condition.wait()
            deadline = time.monotonic() + self.batch_wait_s
            while not self._closed and len(self._waiting) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            if self._closed:
                return []
            count = min(self.max_batch, len(self._waiting))
            return [self._waiting.popleft() for _ in range(count)]

    def _loop(self) -> None:
        while batch := self._take_batch():
            live = [job for job in batch if not job.cancelled.is_set()]
            if not live:
                continue
            self.recent_batch_sizes.append(len(live))
            self.batches_run += 1
            try:
                with self.model_lock:
                    self.run_batch(live)
            except Exception as error:  # a bug must fail these requests, not kill the worker
                log.exception("batch of %d rows failed", len(live))
                for job in live:
                    job.emit(Failed(f"{type(error).__name__}: {error}"))
        for job in self._waiting:
            job.emit(Failed("the server is shutting down", 503))
