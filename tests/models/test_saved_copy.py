"""Reading an embedded model's saved copy directly (`load_saved_model`, `load_saved_tokenizer`) gives exactly what
transformers' `from_pretrained` / `AutoTokenizer` give for the same folder, and an existing cache loads unchanged."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from attnsteer import load_model
from attnsteer.model_info import IDENTITY_ATTRIBUTE, model_identity
from attnsteer.models import embedded
from attnsteer.models.embedded import (
    SMOLLM2_MODEL_ID,
    EmbeddedModelError,
    embedded_model,
    embedded_model_dir,
    load_saved_model,
    load_saved_tokenizer,
)
from tests.tiny_models import ARCHITECTURES, CORPUS

IDS = torch.tensor([[1, 17, 42, 99, 250, 7, 3, 300]])
TEXTS = [CORPUS[0], "<bos> literal <eos><pad> and <|im_start|>", "  two  spaces\nand a newline", "émoji 🎉", "a"]
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": CORPUS[1]}]
BOOKKEEPING = ("_is_hf_initialized", "_use_kernels", "_weight_conversions", "training")


def refuse(*args, **kwargs):
    raise AssertionError("the direct path fell back to transformers' loader")


def bookkeeping(model) -> dict:
    """The loader-set attributes of every module and parameter, by name."""
    parts = {f"module {name}": module for name, module in model.named_modules()}
    parts.update({f"parameter {name}": parameter for name, parameter in model.named_parameters()})
    return {name: {key: repr(vars(part).get(key)) for key in BOOKKEEPING} for name, part in parts.items()}


def assert_same_model(fast, reference) -> None:
    """Weights, buffers, tying, config, generation config, bookkeeping and logits all equal."""
    saved, loaded = reference.state_dict(), fast.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[key], saved[key]) for key in saved)
    buffers, reference_buffers = dict(fast.named_buffers()), dict(reference.named_buffers())
    assert buffers.keys() == reference_buffers.keys()
    assert all(torch.equal(buffers[key], reference_buffers[key]) for key in buffers)
    tied = {name for name, _ in fast.named_parameters(remove_duplicate=False)} - dict(fast.named_parameters()).keys()
    assert tied == ({name for name, _ in reference.named_parameters(remove_duplicate=False)}
                    - dict(reference.named_parameters()).keys())
    assert fast.config.to_dict() == reference.config.to_dict()
    assert fast.generation_config.to_dict() == reference.generation_config.to_dict()
    assert bookkeeping(fast) == bookkeeping(reference)
    with torch.no_grad():
        assert torch.equal(fast(IDS).logits, reference(IDS).logits)


# Architectures whose saved weight names differ from the model's (transformers renames them on load), so the copy
# goes through from_pretrained; the embedded models' (llama, gemma3) must not be among them.
RENAMED_ON_LOAD = {"gpt_neox"}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_saved_model_loads_as_from_pretrained_would(architecture, tiny_model_dir, monkeypatch):
    folder = tiny_model_dir(architecture)
    calls, from_pretrained = [], AutoModelForCausalLM.from_pretrained
    with monkeypatch.context() as patched:
        patched.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *args, **kwargs: calls.append(args) or from_pretrained(*args, **kwargs))
        fast = load_saved_model(folder, torch.float32)
    assert len(calls) == (architecture in RENAMED_ON_LOAD)  # the direct path ran wherever names match
    assert not fast.training and fast.dtype == torch.float32
    assert_same_model(fast, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32))


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])  # the embedded models' (gemma3 ties its head)
def test_another_dtype_goes_through_from_pretrained(architecture, tiny_model_dir, monkeypatch):
    folder = tiny_model_dir(architecture)
    calls, from_pretrained = [], AutoModelForCausalLM.from_pretrained
    with monkeypatch.context() as patched:
        patched.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *args, **kwargs: calls.append(kwargs["dtype"]) or from_pretrained(*args, **kwargs))
        model = load_saved_model(folder, torch.bfloat16)
    assert calls == [torch.bfloat16] and model.dtype == torch.bfloat16
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, reference(IDS).logits)


def test_a_weight_missing_from_the_copy_raises_instead_of_staying_random(tiny_model_dir, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir("llama"), folder)
    state = load_file(folder / "model.safetensors")
    del state["model.norm.weight"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(EmbeddedModelError, match=r"lacks weights of its model \(\['model.norm.weight'\]\)"):
        load_saved_model(folder, torch.float32)


@pytest.fixture
def chat_tokenizer_dir(chat_tokenizer, tmp_path):
    """A folder holding the tiny chat tokenizer as `save_pretrained` writes it (with chat_template.jinja)."""
    chat_tokenizer.save_pretrained(tmp_path / "tokenizer")
    return tmp_path / "tokenizer"


def assert_same_tokenizer(fast, reference) -> None:
    # first, while neither has encoded anything (encoding with padding leaves the backend's padding set)
    assert json.loads(fast.backend_tokenizer.to_str()) == json.loads(reference.backend_tokenizer.to_str())
    for options in ({}, {"return_offsets_mapping": True}, {"add_special_tokens": False},
                    {"padding": True, "return_special_tokens_mask": True}):
        assert fast(TEXTS, **options).data == reference(TEXTS, **options).data
    ids = reference(TEXTS[1])["input_ids"]
    for skip in (False, True):
        assert fast.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    for attribute in ("all_special_tokens", "all_special_ids", "padding_side", "truncation_side", "model_max_length",
                      "chat_template", "pad_token_id", "name_or_path"):
        assert getattr(fast, attribute) == getattr(reference, attribute), attribute
    if reference.chat_template:
        assert (fast.apply_chat_template(MESSAGES, add_generation_prompt=True)
                == reference.apply_chat_template(MESSAGES, add_generation_prompt=True))


def test_saved_tokenizer_equals_auto_tokenizer(chat_tokenizer_dir, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(AutoTokenizer, "from_pretrained", refuse)
        fast = load_saved_tokenizer(chat_tokenizer_dir)
    assert fast.all_special_tokens.count("<|im_start|>") == 1  # the extra special tokens came through
    assert_same_tokenizer(fast, AutoTokenizer.from_pretrained(chat_tokenizer_dir))


def test_a_stand_in_class_takes_its_defaults_and_others_go_to_auto_tokenizer(chat_tokenizer_dir, monkeypatch):
    settings_file = chat_tokenizer_dir / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text())
    settings_file.write_text(json.dumps({**settings, "tokenizer_class": "GemmaTokenizer"}))
    stand_in = load_saved_tokenizer(chat_tokenizer_dir, {"GemmaTokenizer": {"padding_side": "left"}})
    assert stand_in.padding_side == "left"
    assert stand_in(["a", CORPUS[0]], padding=True)["attention_mask"][0][0] == 0  # pads on the left
    calls = []
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda path: calls.append(path) or "auto")
    assert load_saved_tokenizer(chat_tokenizer_dir) == "auto"  # GemmaTokenizer without defaults given
    settings_file.write_text(json.dumps({**settings, "add_bos_token": True}))  # a key it does not reproduce
    assert load_saved_tokenizer(chat_tokenizer_dir) == "auto"
    settings_file.write_text(json.dumps(settings))
    (chat_tokenizer_dir / "special_tokens_map.json").write_text("{}")  # a legacy file
    assert load_saved_tokenizer(chat_tokenizer_dir) == "auto"
    assert calls == [chat_tokenizer_dir] * 3


def test_an_existing_cache_loads_without_converting_again(tiny_model_dir, chat_tokenizer, tmp_path, monkeypatch):
    """A copy as conversions have always saved it (save_pretrained of model and tokenizer, then the marker) loads
    through the direct path: nothing is converted or rewritten, and the result equals from_pretrained's."""
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    folder = embedded_model_dir(SMOLLM2_MODEL_ID)
    shutil.copytree(tiny_model_dir("llama"), folder)
    chat_tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, IDENTITY_ATTRIBUTE: SMOLLM2_MODEL_ID}))
    (folder / embedded._COMPLETE_MARKER).write_text(SMOLLM2_MODEL_ID + "\n")
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    monkeypatch.setattr(embedded, "_convert_gguf", refuse)
    model, tokenizer = load_model(SMOLLM2_MODEL_ID)
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == before
    assert model_identity(model) == SMOLLM2_MODEL_ID and model.config._attn_implementation == "attnsteer_sdpa"
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():  # unsteered, the installed attention equals stock sdpa
        assert torch.allclose(model(IDS).logits, reference(IDS).logits, atol=1e-5)
    assert_same_tokenizer(tokenizer, AutoTokenizer.from_pretrained(folder))
    assert embedded_model(SMOLLM2_MODEL_ID).load_tokenizer is load_saved_tokenizer
