"""Continuous batching: rows join the running batch between decode steps and leave when they end.

Why a scheduler of our own and not transformers' continuous batching (`generation/continuous_batching/`, 5.24):
its paged path packs every request into ONE varlen row (`input_ids [1, total_tokens]`, `cu_seq_lens_q/k`,
per-layer `read_index`/`write_index` into a block-paged cache) and hands the attention function a prebuilt
block-diagonal mask, so masking_utils never calls our mask function and `SteeringState` never learns
`query_end`. Our steering is indexed by batch row and absolute key position (`token_bias [rows, tokens]`, head
weights `[rows, heads]`, Spotlight's per-row span and its per-row share of attention over that row's queries):
inside the packed layout every one of these would have to be re-indexed per segment from `cu_seq_lens` and the
block tables in `bias_for`, `split_heads` and both Spotlight passes, i.e. a second attention implementation.
`switch_to_cb_friendly_attn` also refuses every implementation but "sdpa", "paged|eager" and flash, so our
registered `attnsteer_sdpa` / `attnsteer_eager` cannot even be selected there. Here the running batch stays an
ordinary left-padded batch with a DynamicCache of full layers (`running_batch.py`), so the steered attention
runs unchanged.

`ContinuousDecoder` does the model work of one step; `ContinuousScheduler` is the worker thread that admits
waiting rows (up to `max_batch` running) before each step and holds `model_lock` for the step only.
"""

from __future__ import annotations

import logging
import threading
import time

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.context import prefix_cache
from attnsteer.context.prefix_cache import Prefill
from attnsteer.server.batching import RowWorker
from attnsteer.server.counters import DecodeCounters
from attnsteer.server.engine import SHUTTING_DOWN, Failed, GenerationJob, RowReply, eos_ids, pick_tokens, row_generator
from attnsteer.server.prefill import PrefillFunction, cache_layers
from attnsteer.server.running_batch import BatchRow, RunningBatch

log = logging.getLogger(__name__)


class ContinuousDecoder:
    """Decodes rows that join and leave between steps (call from one thread at a time).

    `accept(jobs)` hands rows over; each `step()` prefills them (each alone, through `prefill`, see
    `prefill.py`) and picks their first token, merges them into the running batch, runs one decode step, picks
    every row's next token and drops the rows that ended (so their slots are free before the next step). A row
    that fails on its own (its seed, its sampling, its prefill) ends with its own `Failed`; `stop()` ends every
    row with `Failed` 503 at the next step.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 prefill: PrefillFunction = prefix_cache.prefill) -> None:
        self.model, self.tokenizer, self.prefill = model, tokenizer, prefill
        self.eos_ids = eos_ids(model, tokenizer)
        self.batch = RunningBatch(model)
        self.joining: list[GenerationJob] = []
        self.stopping = threading.Event()
        self.counters = DecodeCounters()
        self.mean_step_s = 0.0  # a moving average of the decode steps' duration (0 before the first)

    @property
    def running(self) -> int:
        """Rows accepted and not ended (those still to prefill included)."""
        return len(self.batch.rows) + len(self.joining)

    def stop(self) -> None:
        """Fail every row at the next step (server shutdown); later rows too."""
        self.stopping.set()

    def accept(self, jobs: list[GenerationJob]) -> None:
        """Rows to admit at the next step."""
        self.joining.extend(jobs)

    def step(self) -> None:
        """Admit the accepted rows, run one decode step, give every row its next token, drop the rows that ended."""
        with torch.inference_mode():
            if self.stopping.is_set():
                self.fail_all(SHUTTING_DOWN, 503)
                return
            self._admit()
            if not self.batch.rows:
                return
            self.counters.note_step(len(self.batch.rows))
            started = time.perf_counter()
            self.batch.step()
            self._note_step_time(time.perf_counter() - started)
            self._advance(self.batch.rows, self.batch.logits)
            self.batch.keep([index for index, row in enumerate(self.batch.rows) if row.reply.outcome is None])
            if self.stopping.is_set():
                self.fail_all(SHUTTING_DOWN, 503)

    def _note_step_time(self, seconds: float) -> None:
        self.mean_step_s = seconds if self.mean_step_s == 0 else 0.9 * self.mean_step_s + 0.1 * seconds

    def fail_all(self, message: str, status: int = 500) -> None:
        """End every row (running or still to admit) with Failed and start over with an empty batch."""
        for row in self.batch.rows:
            row.reply.fail(message, status)
        for job in self.joining:
            job.emit(Failed(message, status))
        self.counters.add(rows_failed=len(self.batch.rows))
        self.joining, self.batch = [], RunningBatch(self.model)

    def _admit(self) -> None:
        """Prefill the accepted rows, give each its first token, and merge those still live into the batch."""
        joining, self.joining = self.joining, []
        admitted = [pair for job in joining if not job.cancelled.is_set() and (pair := self._prefilled(job))]
        for row, prefill in admitted:
            self._advance([row], prefill.logits[None])
        live = [(row, prefill) for row, prefill in admitted if row.reply.outcome is None]
        self.batch.join([row for row, _ in live], [prefill for _, prefill in live])

    def _prefilled(self, job: GenerationJob) -> tuple[BatchRow, Prefill] | None:
        """The job's row and its prefill; None (and the row's own Failed) when its seed or prefill fails."""
        reply = RowReply(job, self.tokenizer, self.eos_ids)
        length = len(job.prompt.input_ids)
        self.counters.add(rows_admitted=1, prompt_tokens=length)
        try:
            generator = row_generator(job)
        except ValueError as error:  # the row's seed
            return self._failed(reply, str(error))
        try:
            ids, emphasis = torch.tensor([job.prompt.input_ids]), torch.tensor([job.prompt.emphasis]).bool()
            prefill = self.prefill(self.model, job.prompt.steering, ids, emphasis)
            cache_layers(prefill.cache, length)
        except Exception as error:  # a bug in one row's prefill fails that row, not the batch
            log.exception("prefill of a %d-token row failed", length)
            return self._failed(reply, f"{type(error).__name__}: {error}")
        self.counters.add(reused_prompt_tokens=prefill.reused_tokens)
        return BatchRow(job, reply, generator, length), prefill

    def _failed(self, reply: RowReply, message: str) -> None:
        reply.fail(message)
        self.counters.add(rows_failed=1)
        return None

    def _advance(self, rows: list[BatchRow], logits: torch.Tensor | None) -> None:
        """Pick each row's next token from logits [rows, vocab] and feed it to its reply (which may end the row)."""
        assert logits is not None
        done = [False] * len(rows)
        next_ids = pick_tokens(logits, [row.reply for row in rows], [row.generator for row in rows], done)
        for index, row in enumerate(rows):
            if not done[index]:
                row.next_token = int(next_ids[index])
                row.reply.add(row.next_token)
        self.counters.add(tokens_generated=sum(row.reply.outcome in (None, "finished") for row in rows))
        self.counters.note_outcomes(row.reply.outcome for row in rows)


class ContinuousScheduler(RowWorker):
    """Batching "continuous": a worker thread that admits waiting rows into the running batch before each step.

    Rows wait in a `WaitingRows` (max_waiting; QueueFullError beyond). While nothing runs, the worker waits for
    a row and then up to `batch_wait_s` for more, so a burst starts together. Free places go to the waiting rows
    with the earliest `finish_estimate` (arrival + max_tokens x mean step time): a short request overtakes long
    ones that arrived shortly before it, and no row waits for ever (a row arriving after a waiting row's estimate
    never overtakes it). `batches_run` counts the groups of rows admitted together and `recent_batch_sizes` their
    sizes (as the static queue counts its batches); the rows of each decode step are in
    `stats()["recent_step_sizes"]`.
    """

    mode = "continuous"

    def __init__(self, decoder: ContinuousDecoder, max_batch: int, max_waiting: int, batch_wait_s: float,
                 model_lock: threading.Lock) -> None:
        self.decoder, self.counters = decoder, decoder.counters
        super().__init__(max_batch, max_waiting, batch_wait_s, model_lock)

    @property
    def running_rows(self) -> int:
        return self.decoder.running

    def _loop(self) -> None:
        while self._take() is not None:
            if not self.decoder.running:
                continue
            try:
                with self.model_lock:
                    self.decoder.step()
            except Exception as error:  # a bug must fail these rows, not kill the worker
                log.exception("a decode step of %d rows failed", self.decoder.running)
                self.decoder.fail_all(f"{type(error).__name__}: {error}")
        self.decoder.fail_all(SHUTTING_DOWN, 503)
        self.waiting_rows.fail_all(SHUTTING_DOWN, 503)

    def finish_estimate(self, job: GenerationJob) -> float:
        """When the row would have finished had it started on arrival (time.monotonic() seconds): its admission
        priority, smallest first. Before the first step (no step time yet) this is the arrival: oldest first."""
        return job.created_at + job.max_tokens * self.decoder.mean_step_s

    def _take(self) -> list[GenerationJob] | None:
        """Move waiting rows into the decoder, up to max_batch running; block while nothing runs. None: closed."""
        idle = self.decoder.running == 0
        taken = self.waiting_rows.take(self.max_batch - self.decoder.running, wait=idle, fill_wait_s=self.batch_wait_s,
                                       priority=self.finish_estimate)
        if taken is None:
            return None
        live = self._live(taken)
        if live:
            self.decoder.accept(live)
        return live
