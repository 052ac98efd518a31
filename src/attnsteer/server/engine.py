"""Batched decoding where every row has its own emphasis, heads, alpha and mode (or none).

One prefill over the left-padded rows, then one token per step for all rows with the KV cache.
Steering is one `SteeringState` for the whole batch (`steering.prepare_state` with one `RowSteering` or
None per row): each row its own alpha/mode and heads, so plain and steered requests share a batch.
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
    message: str


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
    """Decodes a list of jobs together on one model (call from one thread at a time)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model, self.tokenizer = model, tokenizer
        eos = model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.eos_ids = set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def run(self, jobs: list[GenerationJob]) -> None:
        """Decode every job until EOS, a stop string, its max_tokens or cancellation; emit as it goes."""
        batch = batch_of(jobs, self.pad_id)
        device = self.model.device
        attention = batch.attention_mask.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        replies = [ReplyText(self.tokenizer, job.prompt.stop) for job in jobs]
        done = [job.cancelled.is_set() for job in jobs]
        generators = [_generator(job) for job in jobs]
        with torch.inference_mode(), steered(self.model, batch_state(self.model, jobs, batch)):
            output = self.model(input_ids=batch.input_ids.to(device), attention_mask=attention,
                                position_ids=positions, use_cache=True, logits_to_keep=1)
            for _ in range(max(job.max_tokens for job in jobs)):
                next_ids = pick_tokens(output.logits[:, -1].float(), jobs, generators)
                for row, job in enumerate(jobs):
                    if not done[row]:
                        done[row] = self._advance(job, replies[row], int(next_ids[row]))
                if all(done):
                    break
                attention = torch.cat([attention, attention.new_ones(len(jobs), 1)], dim=1)
                positions = positions[:, -1:] + 1
                output = self.model(input_ids=next_ids[:, None], attention_mask=attention, position_ids=positions,
                                    cache=output.cache, use_cache=True, logits_to_keep=1)

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


def _generator(job: GenerationJob) -> torch.Generator | None:
    if job.temperature == 0:
        return None
    generator = torch.Generator()
    if job.seed is None:
        generator.seed()
    else:
        generator.manual_seed(job.seed)
    return generator


def pick_tokens(
    logits: torch.Tensor, jobs: list[GenerationJob], generators: list[torch.Generator | None],
) -> torch.Tensor:
    """logits: [batch, vocab] float -> [batch] long; greedy for temperature 0, else top-p sampling."""
    chosen = logits.argmax(dim=-1)
    for row, job in enumerate(jobs):
        if job.temperature > 0:
            probs = torch.softmax(logits[row].cpu() / job.temperature, dim=-1)
            sorted_probs, order = probs.sort(descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < job.top_p
            sorted_probs = sorted_probs * keep
            choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generators[row])
            chosen[row] = order[choice[0]].to(chosen.device)
    return chosen
