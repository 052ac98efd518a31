"""`load_model`: the embedded default, a local directory, or a hub id, with steering installed."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import AttnsteerError
from attnsteer.models.embedded import EMBEDDED_MODEL_ID, load_embedded_tokenizer, prepare_embedded_model
from attnsteer.steering.install import install


class ModelLoadError(AttnsteerError):
    """The model path or id could not be loaded."""


def load_model(
    name_or_path: str | Path | None = None, dtype: torch.dtype = torch.float32, device: str = "cpu",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in eval mode, with the steered attention installed.

    name_or_path: None or "embedded" for the embedded Gemma 3 270M; else a directory or hub id
    loaded the usual transformers way (nothing is downloaded on machines without network).
    """
    embedded = name_or_path in (None, "embedded", EMBEDDED_MODEL_ID)
    if embedded:
        name_or_path = prepare_embedded_model()
    try:
        tokenizer = load_embedded_tokenizer(name_or_path) if embedded else AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load a causal LM from {str(name_or_path)!r}: {error}") from None
    model.to(device).eval()
    install(model)
    return model, tokenizer
