"""Decoding rows where every row has its own emphasis and steering (method and parameters), or none.

The pieces both decoders share (the events a row emits, `RowReply`, token picking, `DecodeCounters`) and the
static decoder, `BatchGenerator`: one prefill over the left-padded rows, then one token per step for all rows
with the KV cache until the longest row ends. Steering is one `SteeringState` for the whole batch
(`steering.prepare_state` with one `RowSteering` or None per row): each row its own method (PASTA's heads and
alpha/mode, InstABoost's boost, Spotlight's target), so plain requests and requests steered by different methods
share a batch. The continuous decoder (rows join and leave between steps) is `scheduler.ContinuousDecoder`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.server.counters import DecodeCounters
from attnsteer.server.prompts import PreparedPrompt
from attnsteer.server.reply import ReplyText
from attnsteer.steering.activation import prepare_state, steered
from attnsteer.steering.padding import left_pad_prompts
from attnsteer.steering.state import SteeringState

SHUTTING_DOWN = "the server is shutting down"


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    reason: str  # "stop" (EOS or a stop string) or "length" (max_tokens reached)
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    """The row ended without a reply: `status` 500 (a fault) or 503 (the server is shutting down)."""

    message: str
    status: int = 500


Event = TextDelta | Finished | Failed


@dataclass
class GenerationJob:
    """One row to decode. `emit` is called from the worker thread with each event, in order.
    `created_at`: time.monotonic() when the row was made (it then waits for the worker)."""

    prompt: PreparedPrompt
    max_tokens: int
    emit: Callable[[Event], None]
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    created_at: float = field(default_factory=time.monotonic)


class RowReply:
    """One row's reply: its tokens become `TextDelta` events, then one `Finished` (or nothing if cancelled).

    `outcome`: None while the row runs, then "finished", "failed" or "cancelled".
    """

    def __init__(self, job: GenerationJob, tokenizer: PreTrainedTokenizerBase, eos_ids: set[int]) -> None:
        self.job, self.eos_ids = job, eos_ids
        self.text = ReplyText(tokenizer, job.prompt.stop)
        self.outcome: str | None = None

    def add(self, token: int) -> bool:
        """Feed one token; True when the row has ended (cancelled, EOS, a stop string, max_tokens)."""
        if self.job.cancelled.is_set():
            self.outcome = "cancelled"
            return True
        if token in self.eos_ids:
            return self._finish("stop")
        delta, stopped = self.text.add(token)
        if delta:
            self.job.emit(TextDelta(delta))
        if stopped:
            return self._finish("stop")
        if self.text.num_tokens >= self.job.max_tokens:
            return self._finish("length")
        return False

    def fail(self, message: str, status: int = 500) -> None:
        self.outcome = "failed"
        self.job.emit(Failed(message, status))

    def _finish(self, reason: str) -> bool:
        rest = self.text.flush()
        if rest:
            self.job.emit(TextDelta(rest))
        self.job.emit(Finished(reason, len(self.job.prompt.input_ids), self.text.num_tokens))
        self.outcome = "finished"
        return True


def eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The token ids that end a reply: the model's generation config's EOS ids and the tokenizer's."""
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


@dataclass
class Batch:
    """input_ids, attention_mask, emphasis: [batch, tokens], left-padded."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    emphasis: torch.Tensor


def batch_of(jobs: list[GenerationJob], pad_id: int) -> Batch:
    """The jobs' prompts as one left-padded batch."""
    prompts = [job.prompt for job in jobs]
    return Batch(*left_pad_prompts([p.input_ids for p in prompts], [p.emphasis for p in prompts], pad_id))


def batch_state(model: PreTrainedModel, jobs: list[GenerationJob], batch: Batch) -> SteeringState | None:
    """The steering of all rows as one state; None when no row steers (the stock path runs)."""
    steerings = [job.prompt.steering for job in jobs]
    if all(steering is None for steering in steerings):
        return None
    return prepare_state(model, steerings, batch.emphasis, batch.attention_mask.bool())


class BatchGenerator:
    """The static decoder: a list of jobs decoded together on one model (call from one thread at a time).

    A row that fails on its own (its seed, its sampling) ends with its own `Failed` event; the other
    rows go on. `stop()` (server shutdown) ends every running row with `Failed` at the next step.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.eos_ids = eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stopping = threading.Event()
        self.counters = DecodeCounters()

    def stop(self) -> None:
        """End the running batch at its next step (each live row gets Failed); later batches too."""
        self.stopping.set()

    def run(self, jobs: list[GenerationJob]) -> None:
        """Decode every job until EOS, a stop string, its max_tokens or cancellation; emit as it goes."""
        batch = batch_of(jobs, self.pad_id)
        device = self.model.device
        attention = batch.attention_mask.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        replies = [RowReply(job, self.tokenizer, self.eos_ids) for job in jobs]
        done = [job.cancelled.is_set() for job in jobs]
        generators = [_generator(reply, row, done) for row, reply in enumerate(replies)]
        self.counters.add(rows_admitted=len(jobs), prompt_tokens=sum(len(job.prompt.input_ids) for job in jobs))
        try:
            with torch.inference_mode(), steered(self.model, batch_state(self.model, jobs, batch)):
                output = self.model(input_ids=batch.input_ids.to(device), attention_mask=attention,
                                    position_ids=positions, use_cache=True, logits_to_keep=1)
                for _ in range(max(job.max_tokens for job in jobs)):
                    next_ids = pick_tokens(output.logits[:, -1].float(), replies, generators, done)
                    self._advance_all(replies, next_ids, done)
                    if all(done) or self._stopped(replies, done):
                        break
                    attention = torch.cat([attention, attention.new_ones(len(jobs), 1)], dim=1)
                    positions = positions[:, -1:] + 1
                    self.counters.note_step(len(jobs))
                    output = self.model(input_ids=next_ids[:, None], attention_mask=attention,
                                        position_ids=positions, cache=output.cache, use_cache=True, logits_to_keep=1)
        finally:
            self.counters.note_outcomes(reply.outcome for reply in replies)

    def _advance_all(self, replies: list[RowReply], next_ids: torch.Tensor, done: list[bool]) -> None:
        for row, reply in enumerate(replies):
            if not done[row]:
                done[row] = reply.add(int(next_ids[row]))
                self.counters.add(tokens_generated=int(reply.outcome != "cancelled"))

    def _stopped(self, replies: list[RowReply], done: list[bool]) -> bool:
        """On shutdown, fail every live row; True when the batch must end."""
        if not self.stopping.is_set():
            return False
        for row, reply in enumerate(replies):
            if not done[row]:
                done[row] = True
                reply.fail(SHUTTING_DOWN, 503)
        return True


def row_generator(job: GenerationJob) -> torch.Generator | None:
    """The row's sampling generator (None: greedy). Raises ValueError, with the message for the client, when the
    row's seed cannot seed one."""
    if job.temperature == 0:
        return None
    generator = torch.Generator()
    try:
        if job.seed is None:
            generator.seed()
        else:
            generator.manual_seed(job.seed)
    except (RuntimeError, ValueError, OverflowError, TypeError) as error:
        message = f"seed {job.seed!r} cannot seed a generator ({error}); give an integer in 0..2**63-1"
        raise ValueError(message) from None
    return generator


def _generator(reply: RowReply, row: int, done: list[bool]) -> torch.Generator | None:
    """`row_generator` for a row of a static batch: a bad seed fails this row only (done, with its Failed)."""
    if done[row]:
        return None
    try:
        return row_generator(reply.job)
    except ValueError as error:
        done[row] = True
        reply.fail(str(error))
        return None


def pick_tokens(
    logits: torch.Tensor, replies: list[RowReply], generators: list[torch.Generator | None], done: list[bool],
) -> torch.Tensor:
    """logits: [batch, vocab] float -> [batch] long; greedy for temperature 0, else top-p sampling.

    A live row whose sampling fails is marked done with its own `Failed` event (it gets the greedy token).
    """
    chosen = logits.argmax(dim=-1)
    for row, reply in enumerate(replies):
        job = reply.job
        if job.temperature > 0 and not done[row]:
            try:
                chosen[row] = sample_top_p(logits[row], job.temperature, job.top_p, generators[row])
            except (RuntimeError, ValueError) as error:
                done[row] = True
                reply.fail(f"sampling failed for this request: {error}")
    return chosen


def sample_top_p(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """One token id from softmax(logits / temperature), restricted to the top-p nucleus.

    logits: [vocab]. Computed in float64 after subtracting the maximum, so any temperature > 0 gives
    finite probabilities (a vanishing temperature becomes greedy instead of inf / nan).
    """
    scaled = logits.detach().cpu().double()
    probs = torch.softmax((scaled - scaled.max()) / temperature, dim=-1)
    sorted_probs, order = probs.sort(descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
    sorted_probs = sorted_probs * keep
    choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
    return int(order[choice[0]])
