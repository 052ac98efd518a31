"""Which attention heads to steer: `HeadConfig` and the shipped default sets."""

from attnsteer.heads.defaults import default_heads, heads_for_model
from attnsteer.heads.head_config import HeadConfig, HeadSpec

__all__ = ["HeadConfig", "HeadSpec", "default_heads", "heads_for_model"]
