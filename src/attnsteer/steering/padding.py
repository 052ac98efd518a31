"""Left padding: every batch attnsteer builds is left-padded, so each row's last token sits in the last column
(where generation continues and `logits_to_keep` reads)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def left_pad(rows: Sequence[torch.Tensor | Sequence[Any]], fill: Any, width: int | None = None) -> torch.Tensor:
    """[len(rows), width]: each row right-aligned, `fill` before it.

    rows: 1-D tensors or lists (ints, bools or floats; one kind for all rows).
    width: the padded length; default the longest row.
    """
    tensors = [row if isinstance(row, torch.Tensor) else torch.tensor(list(row)) for row in rows]
    width = max(len(row) for row in tensors) if width is None else width
    return torch.stack([torch.cat([torch.full((width - len(row),), fill, dtype=row.dtype), row]) for row in tensors])


def left_pad_prompts(
    ids: Sequence[Sequence[int]], emphasis: Sequence[Sequence[bool]], pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token rows and their emphasis flags as one batch: (input_ids, attention_mask, emphasis_mask),
    each [batch, longest row], left-padded (attention 0 and emphasis False on padding)."""
    return left_pad(ids, pad_id), left_pad([[1] * len(row) for row in ids], 0), left_pad(emphasis, False)
