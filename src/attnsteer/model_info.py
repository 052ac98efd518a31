"""What attnsteer reads off a loaded model: its identity and its attention shape.

A leaf module (no torch, no transformers import): `heads/` and `steering/` both need these facts,
and neither may import the other's dependencies to get them.
"""

from __future__ import annotations

from typing import Any

IDENTITY_ATTRIBUTE = "attnsteer_model_id"


def model_identity(model: Any) -> str:
    """`config.attnsteer_model_id` when attnsteer named the model, else its name or path.

    The key under which default head sets, head files and cached contexts are stored.
    """
    config = model.config
    return str(getattr(config, IDENTITY_ATTRIBUTE, None) or getattr(config, "_name_or_path", "") or "unknown")


def model_shape(model: Any) -> tuple[int, int]:
    """(number of layers, query heads per layer) from the model's text config."""
    config = model.config.get_text_config()
    return config.num_hidden_layers, config.num_attention_heads
