"""The rows being decoded together by the continuous decoder, as one left-padded batch that changes shape.

Every row's tokens end in the last column, so one decode step appends one column for all rows. A row that
joins brings its own prefill cache (keys/values [1, kv_heads, T, head_dim] per layer): the batch and the row are
left-padded to the wider of the two and stacked. Rows that end are dropped (index_select), then the leading
columns that are padding in every remaining row are trimmed. Padding keys are zeros and masked out.

Steering is one `SteeringState` over the current rows, rebuilt after every change of membership, in the batch's
padded coordinates: a key's absolute position is its column (the cache's length is the batch width, so the
steered mask function's `q_offset` is the width), each row's prompt sits in the columns before its generated
tokens, and generated tokens are neither emphasised nor down-weighted (bias 0, as past the input of a static
batch). Rows keep their own position ids (RoPE), so padding never shifts a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel

from attnsteer.context.prefix_cache import Prefill
from attnsteer.server.engine import GenerationJob, RowReply
from attnsteer.server.prefill import cache_layers
from attnsteer.steering.activation import prepare_state, steered
from attnsteer.steering.state import SteeringState


@dataclass
class BatchRow:
    """One row of the running batch: its job, its reply, its sampling generator (None: greedy), `length`, the
    positions it holds in the cache (prompt plus generated tokens fed back), and `next_token`, the token it has
    picked and the next step feeds."""

    job: GenerationJob
    reply: RowReply
    generator: torch.Generator | None
    length: int
    next_token: int = -1

    @property
    def prompt_length(self) -> int:
        return len(self.job.prompt.input_ids)


class RunningBatch:
    """Rows decoded together, left-padded to one width (`width` columns).

    cache: a DynamicCache of full layers, keys/values [rows, kv_heads, width, head_dim]. attention: [rows, width]
    long, 1 on the positions a row holds. logits: [rows, vocab] float32, each row's logits from the last step (a
    row that joined since: from its prefill). Call from the decoder's thread only, inside torch.inference_mode().
    """

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.rows: list[BatchRow] = []
        self.cache = DynamicCache()
        self.attention = torch.zeros(0, 0, dtype=torch.long, device=model.device)
        self.logits: torch.Tensor | None = None
        self.state: SteeringState | None = None

    @property
    def width(self) -> int:
        return self.attention.shape[1]

    def join(self, rows: list[BatchRow], prefills: list[Prefill]) -> None:
        """Add rows with their prefills (each row's cache holds its whole prompt, row.length positions)."""
        if not rows:
            return
        incoming = [cache_layers(prefill.cache, row.length) for row, prefill in zip(rows, prefills, strict=True)]
        width = max([self.width] + [row.length for row in rows])
        parts = ([self._layers()] if self.rows else []) + incoming
        self.cache = DynamicCache(ddp_cache_data=[
            tuple(torch.cat([_left_pad(part[layer][kind], width) for part in parts]) for kind in (0, 1))
            for layer in range(len(incoming[0]))])
        masks = [self.attention] + [self.attention.new_ones(1, row.length) for row in rows]
        self.attention = torch.cat([F.pad(mask, (width - mask.shape[1], 0)) for mask in masks])
        logits = [prefill.logits.to(self.model.device)[None] for prefill in prefills]
        self.logits = torch.cat(([self.logits] if self.rows else []) + logits)
        self.rows += rows
        self.state = self._steering_state()

    def keep(self, indices: list[int]) -> None:
        """Keep only the rows at `indices` (in that order); trim the columns that are now padding in every row."""
        if len(indices) == len(self.rows):
            return
        self.rows = [self.rows[index] for index in indices]
        if not self.rows:
            self.cache, self.logits, self.state = DynamicCache(), None, None
            self.attention = self.attention[:0, :0]
            return
        select = torch.tensor(indices, device=self.attention.device)
        start = self.width - max(row.length for row in self.rows)
        self.cache = DynamicCache(ddp_cache_data=[(keys[select, :, start:], values[select, :, start:])
                                                  for keys, values in self._layers()])
        self.attention = self.attention[select, start:]
        self.logits = self.logits[select] if self.logits is not None else None
        self.state = self._steering_state()

    def step(self) -> None:
        """Feed each row its `next_token` (one new column) and keep the new logits."""
        attention = torch.cat([self.attention, self.attention.new_ones(len(self.rows), 1)], dim=1)
        next_ids = torch.tensor([[row.next_token] for row in self.rows], device=attention.device)
        positions = torch.tensor([[row.length] for row in self.rows], device=attention.device)
        with steered(self.model, self.state):
            output = self.model(input_ids=next_ids, attention_mask=attention, position_ids=positions,
                                cache=self.cache, use_cache=True, logits_to_keep=1)
        self.cache, self.attention, self.logits = output.cache, attention, output.logits[:, -1].float()
        for row in self.rows:
            row.length += 1

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The cache's (keys, values) per layer, [rows, kv_heads, width, head_dim]."""
        return [(keys, values) for keys, values, *_ in self.cache]

    def _steering_state(self) -> SteeringState | None:
        """The rows' steering in the batch's columns (None when no row steers)."""
        steerings = [row.job.prompt.steering for row in self.rows]
        if all(steering is None for steering in steerings):
            return None
        emphasis = torch.zeros(len(self.rows), self.width, dtype=torch.bool)
        prompt = torch.zeros_like(emphasis)
        for index, row in enumerate(self.rows):
            start = self.width - row.length
            prompt[index, start : start + row.prompt_length] = True
            emphasis[index, start : start + row.prompt_length] = torch.tensor(row.job.prompt.emphasis, dtype=torch.bool)
        return prepare_state(self.model, steerings, emphasis, prompt)


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """[rows, kv_heads, length, head_dim] -> [rows, kv_heads, width, head_dim], zeros before."""
    return F.pad(tensor, (0, 0, width - tensor.shape[2], 0))
