from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from attnsteer import Steerer, load_model
from attnsteer.model_info import model_identity
from attnsteer.models import ModelLoadError, cache_dir
from attnsteer.models.embedded import embedded_model_dir
from attnsteer.models.loading import model_source
from tests.tiny_models import VOCAB, tiny_model

PROMPT = "**The Eiffel Tower** is located in"
SHAPE_FIELDS = ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_size",
                "vocab_size")


def greedy_without_cache(steerer: Steerer, prompt: str, max_new_tokens: int) -> str:
    """Greedy steered decoding by a full forward per step (no KV cache); new tokens are never down-weighted."""
    encoded = steerer.encode(prompt)
    ids, emphasis = encoded.encodings["input_ids"], encoded.emphasis_mask
    prompt_mask = torch.ones_like(emphasis)
    for _ in range(max_new_tokens):
        with torch.no_grad(), steerer.steered({"input_ids": ids}, emphasis, prompt_mask):
            token = steerer.model(input_ids=ids).logits[0, -1].argmax()
        if int(token) == steerer.tokenizer.eos_token_id:
            break
        ids = torch.cat([ids, token.view(1, 1)], dim=1)
        emphasis = torch.cat([emphasis, torch.zeros(1, 1, dtype=torch.bool)], dim=1)
        prompt_mask = torch.cat([prompt_mask, torch.zeros(1, 1, dtype=torch.bool)], dim=1)
    return steerer.tokenizer.decode(ids[0, encoded.encodings["input_ids"].shape[1] :], skip_special_tokens=True)


def test_loads_a_saved_model_directory_with_steering_installed(tmp_path, tokenizer):
    original = tiny_model("qwen3")
    original.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, loaded_tokenizer = load_model(tmp_path)
    assert type(model) is type(original) and type(model).__name__ == "Qwen3ForCausalLM"
    shape = {field: getattr(model.config, field) for field in SHAPE_FIELDS}
    assert shape == {field: getattr(original.config, field) for field in SHAPE_FIELDS}
    assert shape == {"num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "hidden_size": 64, "vocab_size": VOCAB}
    saved, loaded = original.state_dict(), model.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[name], saved[name]) for name in saved)
    assert model_identity(model) == str(tmp_path)
    assert model.config._attn_implementation == "attnsteer_sdpa"
    assert not model.training and model.dtype == torch.float32
    assert loaded_tokenizer.is_fast and loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    ids = loaded_tokenizer("The Eiffel Tower", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
        assert logits.shape == (1, ids.shape[1], VOCAB)
        assert torch.allclose(logits, original(ids).logits, atol=1e-5)  # unsteered = stock
    steerer = Steerer(model, loaded_tokenizer, heads="1")
    encoded = steerer.encode(PROMPT)
    with torch.no_grad():
        plain_logits = model(**encoded.encodings).logits
        with steerer.steered(encoded.encodings, encoded.emphasis_mask):
            steered_logits = model(**encoded.encodings).logits
    assert (steered_logits - plain_logits).abs().max() > 1e-3  # the installed attention really steers
    steered = steerer.generate(PROMPT, max_new_tokens=4)
    assert steered == greedy_without_cache(steerer, PROMPT, 4)
    assert steered != steerer.generate(PROMPT, max_new_tokens=4, steer=False)
    assert model.config._attn_implementation == "attnsteer_sdpa"  # stays installed


def test_a_missing_directory_says_so_before_transformers_sees_it(tmp_path):
    for missing in (tmp_path / "nowhere", str(tmp_path / "nowhere"), "/nonexistent", "./not-here"):
        with pytest.raises(ModelLoadError) as raised:
            load_model(missing)
        assert str(raised.value) == f"no such directory: {str(missing)!r} (give a model directory or a hub id like " \
            "'org/name')"


def test_a_directory_without_a_model_says_which_files_are_missing(tmp_path, tiny_model_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"^no model files \(config.json and the weights\) in '.*empty'$"):
        load_model(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"^not a directory: '.*file.txt'"):
        load_model(tmp_path / "file.txt")
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir("llama") / name, no_tokenizer / name)
    with pytest.raises(ModelLoadError, match=r"^no tokenizer files \(tokenizer.json, .*\) in '.*no-tokenizer'$"):
        load_model(no_tokenizer)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_model_dir("llama"), no_weights, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelLoadError) as raised:
        load_model(no_weights)
    assert "\n" not in str(raised.value) and "model.safetensors" in str(raised.value)


def test_hub_ids_go_to_transformers_and_paths_never_do(tmp_path):
    assert model_source("google/gemma-3-270m") == "google/gemma-3-270m"
    assert model_source("gpt2") == "gpt2"
    for path_like in ("/org/name", "./name", "org/name/extra", "a b"):
        with pytest.raises(ModelLoadError, match="no such directory"):
            model_source(path_like)
    with pytest.raises(ModelLoadError, match="no such directory"):
        model_source(Path("org/name"))  # a Path is always a directory, never a hub id


def test_a_transformers_error_is_one_line(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your internet connection.")

    monkeypatch.setattr("attnsteer.models.loading.AutoTokenizer.from_pretrained", unreachable)
    with pytest.raises(ModelLoadError) as raised:
        load_model("org/name")
    assert str(raised.value) == ("cannot load a causal LM from 'org/name' (no such directory here, so it was read as "
                                 "a hub id): We couldn't connect to 'https://huggingface.co'. Check your internet "
                                 "connection.")


def test_loading_shows_no_transformers_progress_bar(tiny_model_dir, capfd):
    from transformers.utils import logging as transformers_logging

    def own_hook(factory, args, kwargs):
        return factory(*args, **kwargs)

    previous = transformers_logging.set_tqdm_hook(own_hook)
    try:
        load_model(tiny_model_dir("llama"))
        captured = capfd.readouterr()
        assert "Loading weights" not in captured.err + captured.out
        assert transformers_logging.set_tqdm_hook(previous) is own_hook  # the caller's hook is back after the load
    finally:
        transformers_logging.set_tqdm_hook(previous)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert embedded_model_dir().is_relative_to(tmp_path)
