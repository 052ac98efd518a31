"""Default head sets shipped as package data, keyed by model identity and shape."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from transformers import PreTrainedModel

from attnsteer.errors import HeadConfigError
from attnsteer.heads.head_config import HeadConfig
from attnsteer.models.identity import model_identity


def shipped_head_sets() -> list[dict[str, Any]]:
    """Every head set file under `attnsteer/heads/default_sets/` (model_id, shape, heads, provenance)."""
    folder = files("attnsteer.heads").joinpath("default_sets")
    return [json.loads(entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".json")]


def default_heads(model: PreTrainedModel) -> HeadConfig:
    """The shipped head set for this exact model; an error (never a guess) for any other model."""
    identity = model_identity(model)
    config = model.config.get_text_config()
    for entry in shipped_head_sets():
        if entry["model_id"] == identity and (entry["num_layers"], entry["num_heads"]) == (
            config.num_hidden_layers, config.num_attention_heads,
        ):
            return HeadConfig.from_dict(entry["heads"])
    known = sorted(entry["model_id"] for entry in shipped_head_sets())
    raise HeadConfigError(
        f"no default head set for model {identity!r} (shipped: {known}); pass heads= a JSON file, "
        "'all', layer numbers like '12', or 'L.H' pairs like '11.2,12.0'"
    )
