"""Loading models: the embedded default and any transformers causal LM.

Names load lazily (`attnsteer.lazy`): `load_model` imports torch and transformers on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnsteer.lazy import lazy_exports

_EXPORTS = {
    "model_identity": "attnsteer.model_info",
    **dict.fromkeys(["EMBEDDED_MODEL_ID", "cache_dir", "prepare_embedded_model"], "attnsteer.models.embedded"),
    **dict.fromkeys(["ModelLoadError", "load_model"], "attnsteer.models.loading"),
}
__all__ = ["EMBEDDED_MODEL_ID", "ModelLoadError", "cache_dir", "load_model", "model_identity",
    "prepare_embedded_model"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from attnsteer.model_info import model_identity
    from attnsteer.models.embedded import EMBEDDED_MODEL_ID, cache_dir, prepare_embedded_model
    from attnsteer.models.loading import ModelLoadError, load_model
