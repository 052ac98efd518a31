"""A model's identity: the key under which default head sets and profiles are stored."""

from __future__ import annotations

from transformers import PreTrainedModel

IDENTITY_ATTRIBUTE = "attnsteer_model_id"


def model_identity(model: PreTrainedModel) -> str:
    """`config.attnsteer_model_id` when attnsteer named the model, else its name or path."""
    config = model.config
    return str(getattr(config, IDENTITY_ATTRIBUTE, None) or getattr(config, "_name_or_path", "") or "unknown")
