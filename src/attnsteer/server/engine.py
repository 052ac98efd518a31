"""Batched decoding where every row has its own emphasis and steering (method and parameters), or none.

One prefill over the left-padded rows, then one token per step for all rows with the KV cache.
Steering is one `SteeringState` for the whole batch (`steering.prepare_state` with one `RowSteering` or
None per row): each row its own method (PASTA's heads and alpha/mode, InstABoost's boost, Spotlight's
target), so plain requests and requests steered by different methods share a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.server.prompts import PreparedPrompt
from attnsteer.server.reply import ReplyText
from attnsteer.steering.activation import prepare_state, steered
from attnsteer.steering.padding import left_pad_prompts
from attnsteer.steering.state import SteeringState


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
    """One row to decode. `emit` is called from the worker thread with each event, in order."""

    prompt: PreparedPrompt
    max_tokens: int
    emit: Callable[[Event], None]
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


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
    """Decodes a list of jobs together on one model (call from one thread at a time).

    A row that fails on its own (its seed, its sampling) ends with its own `Failed` event; the other
    rows go on. `stop()` (server shutdown) ends every running row with `Failed` at the next step.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model, self.tokenizer = model, tokenizer
        eos = model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.eos_ids = set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stopping = threading.Event()

    def stop(self) -> None:
        """End the running batch at its next step (each live row gets Failed); later batches too."""
        self.stopping.set()

    def run(self, jobs: list[GenerationJob]) -> None:
        """Decode every job until EOS, a stop string, its max_tokens or cancellation; emit as it goes."""
        batch = batch_of(jobs, self.pad_id)
        device = self.model.device
        attention = batch.attention_mask.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        replies = [ReplyText(self.tokenizer, job.prompt.stop) for job in jobs]
        done = [job.cancelled.is_set() for job in jobs]
        generators = [_generator(job, row, done) for row, job in enumerate(jobs)]
        with torch.inference_mode(), steered(self.model, batch_state(self.model, jobs, batch)):
            output = self.model(input_ids=batch.input_ids.to(device), attention_mask=attention,
                                position_ids=positions, use_cache=True, logits_to_keep=1)
            for _ in range(max(job.max_tokens for job in jobs)):
                next_ids = pick_tokens(output.logits[:, -1].float(), jobs, generators, done)
                for row, job in enumerate(jobs):
                    if not done[row]:
                        done[row] = self._advance(job, replies[row], int(next_ids[row]))
                if all(done) or self._stopped(jobs, done):
                    break
                attention = torch.cat([attention, attention.new_ones(len(jobs), 1)], dim=1)
                positions = positions[:, -1:] + 1
                output = self.model(input_ids=next_ids[:, None], attention_mask=attention, position_ids=positions,
                                    cache=output.cache, use_cache=True, logits_to_keep=1)

    def _stopped(self, jobs: list[GenerationJob], done: list[bool]) -> bool:
        """On shutdown, fail every live row; True when the batch must end."""
        if not self.stopping.is_set():
            return False
        for row, job in enumerate(jobs):
            if not done[row]:
                done[row] = True
                job.emit(Failed("the server is shutting down", 503))
        return True

    def _advance(self, job: GenerationJob, reply: ReplyText, token: int) -> bool:
        """Feed one token to a row; True when the row is finished."""
        if job.cancelled.is_set():
            return True
        if token in self.eos_ids:
            return self._finish(job, reply, "stop")
        delta, stopped = reply.add(token)
        if delta:
            job.emit(TextDelta(delta))
        if stopped:
            return self._finish(job, reply, "stop")
        if reply.num_tokens >= job.max_tokens:
            return self._finish(job, reply, "length")
        return False

    def _finish(self, job: GenerationJob, reply: ReplyText, reason: str) -> bool:
        rest = reply.flush()
        if rest:
            job.emit(TextDelta(rest))
        job.emit(Finished(reason, len(job.prompt.input_ids), reply.num_tokens))
        return True


def _generator(job: GenerationJob, row: int, done: list[bool]) -> torch.Generator | None:
    """The row's sampling generator (None: greedy). A seed that cannot seed one fails this row only."""
    if job.temperature == 0 or done[row]:
        return None
    generator = torch.Generator()
    try:
        if job.seed is None:
            generator.seed()
        else:
            generator.manual_seed(job.seed)
    except (RuntimeError, ValueError, OverflowError, TypeError) as error:
        done[row] = True
        job.emit(Failed(f"seed {job.seed!r} cannot seed a generator ({error}); give an integer in 0..2**63-1"))
        return None
    return generator


def pick_tokens(
    logits: torch.Tensor, jobs: list[GenerationJob], generators: list[torch.Generator | None], done: list[bool],
) -> torch.Tensor:
    """logits: [batch, vocab] float -> [batch] long; greedy for temperature 0, else top-p sampling.

    A live row whose sampling fails is marked done with its own `Failed` event (it gets the greedy token).
    """
    chosen = logits.argmax(dim=-1)
    for row, job in enumerate(jobs):
        if job.temperature > 0 and not done[row]:
            try:
                chosen[row] = sample_top_p(logits[row], job.temperature, job.top_p, generators[row])
            except (RuntimeError, ValueError) as error:
                done[row] = True
                job.emit(Failed(f"sampling failed for this request: {error}"))
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
