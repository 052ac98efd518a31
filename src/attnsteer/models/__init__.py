"""Loading models: the embedded default and any transformers causal LM."""

from attnsteer.model_info import model_identity
from attnsteer.models.embedded import EMBEDDED_MODEL_ID, cache_dir, prepare_embedded_model
from attnsteer.models.loading import ModelLoadError, load_model

__all__ = ["EMBEDDED_MODEL_ID", "ModelLoadError", "cache_dir", "load_model", "model_identity", "prepare_embedded_model"]
