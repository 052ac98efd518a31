"""Several profiling items in one batch: prefix and rest laid out so every row ends at the same column.

Layout of row b (P = longest prefix, R = longest rest):
    [pad .. pad | prefix_b] [pad .. pad | rest_b]
     <------- P ---------->  <------- R ------->
The prefix (positions before the first emphasised token) is prefilled once unsteered; the rest is
what each steered variant recomputes. Left-padding both parts makes the final columns of every row
its last tokens, so one `logits_to_keep` serves all rows. Position ids skip the padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from attnsteer.profiling.items import ProfileItem, item_scores
from attnsteer.steering.padding import left_pad


@dataclass(frozen=True)
class ItemBatch:
    """Tensors for a batch of B items (see the module docstring for the layout).

    prefix_ids / prefix_mask / prefix_positions: [B, P]; rest_ids / rest_mask / rest_positions: [B, R].
    emphasis_mask / prompt_mask: [B, P + R] bool over the whole layout.
    """

    items: tuple[ProfileItem, ...]
    prefix_ids: torch.Tensor
    prefix_mask: torch.Tensor
    prefix_positions: torch.Tensor
    rest_ids: torch.Tensor
    rest_mask: torch.Tensor
    rest_positions: torch.Tensor
    emphasis_mask: torch.Tensor
    prompt_mask: torch.Tensor

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def has_prefix(self) -> bool:
        return self.prefix_ids.shape[1] > 0

    @property
    def attention_mask(self) -> torch.Tensor:
        """[B, P + R] long."""
        return torch.cat([self.prefix_mask, self.rest_mask], dim=1).long()

    @property
    def scored_positions(self) -> int:
        """`logits_to_keep` covering every item's scored positions."""
        return max(item.num_scored_positions for item in self.items)

    def scores(self, logits: torch.Tensor, variants: int) -> torch.Tensor:
        """Per-item scores from logits [B * variants, scored_positions, vocab] (rows item-major) -> [B, variants]."""
        columns = logits.shape[1]
        rows = []
        for index, item in enumerate(self.items):
            block = logits[index * variants : (index + 1) * variants, columns - item.num_scored_positions :]
            rows.append(item_scores(item, block))
        return torch.stack(rows)


def make_batch(items: Sequence[ProfileItem]) -> ItemBatch:
    """Lay out `items` (all with a prefix of >= 1 token, or a single item) as one ItemBatch."""
    prefixes = [item.first_emphasised for item in items]
    rests = [len(item.input_ids) - prefix for item, prefix in zip(items, prefixes, strict=True)]
    if len(items) > 1 and min(prefixes) == 0:
        raise ValueError("items with no prefix are batched alone (a fully padded prefix row is not safe)")
    width_p, width_r = max(prefixes), max(rests)

    def laid_out(tensor_of, fill) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = list(zip(items, prefixes, strict=True))
        prefix = left_pad([tensor_of(item)[:p] for item, p in pairs], fill, width_p)
        rest = left_pad([tensor_of(item)[p:] for item, p in pairs], fill, width_r)
        return prefix, rest

    prefix_ids, rest_ids = laid_out(lambda item: item.input_ids, 0)
    prefix_mask, rest_mask = laid_out(lambda item: torch.ones(len(item.input_ids), dtype=torch.bool), False)
    prefix_positions, rest_positions = laid_out(lambda item: torch.arange(len(item.input_ids)), 0)
    emphasis = torch.cat(laid_out(lambda item: item.emphasis_mask, False), dim=1)
    prompt = torch.cat(laid_out(lambda item: item.prompt_mask, False), dim=1)
    return ItemBatch(tuple(items), prefix_ids, prefix_mask, prefix_positions, rest_ids, rest_mask, rest_positions,
                     emphasis, prompt)


def group_items(items: Sequence[ProfileItem], variants: int, token_budget: int = 1024,
                logit_budget: int = 256, max_columns: int | None = None) -> list[list[ProfileItem]]:
    """Split items into batches: rows (items x variants) x rest length <= token_budget, and
    rows x scored positions <= logit_budget (each kept logit row is a vocabulary-sized vector).
    Items of similar length go together (less padding). Items with no prefix go alone, and so do items
    longer than `max_columns` (a sliding attention window: padding inside a window would change it)."""
    def batchable(item: ProfileItem) -> bool:
        return item.first_emphasised > 0 and (max_columns is None or len(item.input_ids) <= max_columns)

    alone = [[item] for item in items if not batchable(item)]
    ordered = sorted((item for item in items if batchable(item)), key=lambda item: len(item.input_ids))
    groups: list[list[ProfileItem]] = []
    for item in ordered:
        if groups and _fits(groups[-1] + [item], variants, token_budget, logit_budget, max_columns):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups + alone


def _fits(group: list[ProfileItem], variants: int, token_budget: int, logit_budget: int,
          max_columns: int | None) -> bool:
    rows = len(group) * variants
    prefix = max(item.first_emphasised for item in group)
    rest = max(len(item.input_ids) - item.first_emphasised for item in group)
    positions = max(item.num_scored_positions for item in group)
    columns_fit = max_columns is None or prefix + rest <= max_columns
    return rows * rest <= token_budget and rows * positions <= logit_budget and columns_fit
