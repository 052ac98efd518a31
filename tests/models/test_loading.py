from __future__ import annotations

import pytest
import torch

from attnsteer import Steerer, load_model
from attnsteer.models import ModelLoadError, cache_dir
from attnsteer.models.embedded import embedded_model_dir
from tests.tiny_models import tiny_model


def test_loads_a_saved_model_directory_with_steering_installed(tmp_path, tokenizer):
    original = tiny_model("qwen3")
    original.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, loaded_tokenizer = load_model(tmp_path)
    assert model.config._attn_implementation == "attnsteer_sdpa"
    assert not model.training
    ids = loaded_tokenizer("The Eiffel Tower", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, original(ids).logits, atol=1e-5)  # unsteered = stock
    steerer = Steerer(model, loaded_tokenizer, heads="1")
    assert steerer.generate("**The Eiffel Tower** is", max_new_tokens=2) is not None
    assert model.config._attn_implementation == "attnsteer_sdpa"  # stays installed


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot load a causal LM from .*nowhere"):
        load_model(tmp_path / "nowhere")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert embedded_model_dir().is_relative_to(tmp_path)
