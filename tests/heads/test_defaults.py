"""Default head sets: installed ones (`attnsteer profile --install`) win over shipped ones, are found by model
identity and shape only, and make `Steerer(model, tok)` steer them with PASTA, saying so in one log line."""

from __future__ import annotations

import logging

import pytest

from attnsteer import Steerer
from attnsteer.errors import HeadConfigError
from attnsteer.heads.defaults import default_head_set, default_heads, install_head_set, installed_head_path
from attnsteer.model_info import IDENTITY_ATTRIBUTE
from attnsteer.steering.methods import PROFILING_FREE_DEFAULT
from tests.tiny_models import tiny_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSTEER_CACHE", str(tmp_path))
    return tmp_path


def named_model(identity: str, family: str = "llama"):
    model = tiny_model(family)
    setattr(model.config, IDENTITY_ATTRIBUTE, identity)
    return model


def head_file(identity: str, heads: dict, layers: int = 3, per_layer: int = 4) -> dict:
    return {"model_id": identity, "num_layers": layers, "num_heads": per_layer, "heads": heads,
            "provenance": "attnsteer profile --method gradient (test)"}


def test_an_installed_set_becomes_the_default_and_the_log_names_it(cache, tokenizer, caplog):
    model = named_model("org/my-model")
    assert default_head_set(model) is None
    path = install_head_set(head_file("org/my-model", {"1": [2], "2": [0]}))
    assert path.parent == cache / "heads" and path == installed_head_path("org/my-model", (3, 4))
    with caplog.at_level(logging.INFO, logger="attnsteer"):
        steerer = Steerer(model, tokenizer)
    assert steerer.method.name == "pasta" and str(steerer.heads) == "1.2,2.0"
    assert f"the head set installed at {path} by `attnsteer profile --install`" in caplog.text
    # A second install for the same model replaces the first.
    install_head_set(head_file("org/my-model", {"0": [1]}))
    assert str(default_heads(model)) == "0.1"


def test_an_installed_set_applies_to_its_own_identity_and_shape_only(cache, tokenizer, caplog):
    install_head_set(head_file("org/my-model", {"1": [2]}))
    other_name = named_model("org/my-model-v2")
    other_shape = named_model("org/my-model")
    other_shape.config.num_hidden_layers = 5  # same identity, another shape: the indices mean nothing there
    for model in (other_name, other_shape):
        assert default_head_set(model) is None
        with caplog.at_level(logging.INFO, logger="attnsteer"):
            assert Steerer(model, tokenizer).method.name == PROFILING_FREE_DEFAULT
    assert "none installed by `attnsteer profile --install`" in caplog.text


@pytest.mark.parametrize("content, message", [
    ({"1": [2]}, "only a head file that names its model"),
    (head_file("org/m", {}), "the head set to install is empty"),
    (head_file("unknown", {"1": [2]}), "model_id 'unknown'"),
])
def test_what_cannot_be_a_default_is_refused(cache, content, message):
    with pytest.raises(HeadConfigError, match=message):
        install_head_set(content)
    assert not (cache / "heads").exists() or not any((cache / "heads").iterdir())


def test_identities_that_read_alike_get_different_files(cache):
    assert installed_head_path("org/a b", (3, 4)) != installed_head_path("org/a_b", (3, 4))
    assert installed_head_path("org/a", (3, 4)) != installed_head_path("org/a", (4, 4))
