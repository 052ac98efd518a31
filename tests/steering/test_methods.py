"""The steering-method registry: names, parameters, defaults, and InstABoost against an explicit reference."""

from __future__ import annotations

import logging

import pytest
import torch

from attnsteer import Steerer
from attnsteer.errors import SteeringConfigError, UnknownSteeringMethodError
from attnsteer.steering.methods import (
    PROFILING_FREE_DEFAULT,
    Spotlight,
    check_method,
    make_method,
    method_defaults,
    method_parameters,
    steering_method_names,
)
from tests.steering.reference import ReferenceSpec, reference_steering
from tests.steering.test_equivalence import PROMPTS, encode
from tests.tiny_models import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("gemma3")


def test_the_registry_names_each_method_and_its_parameters():
    assert steering_method_names() == ["pasta", "instaboost", "spotlight"]
    assert method_parameters("pasta") == ("heads", "alpha", "mode")
    assert method_parameters("instaboost") == ("boost",)
    assert method_parameters("spotlight") == ("target", "granularity")


def test_bad_names_and_parameters_are_clear_errors(model, tokenizer):
    with pytest.raises(UnknownSteeringMethodError, match="did you mean 'instaboost'"):
        make_method("instaboot", model)
    with pytest.raises(SteeringConfigError, match="target is not a parameter of steering method 'pasta'; its "
                                                  "parameters: heads, alpha, mode"):
        Steerer(model, tokenizer, method="pasta", heads="0", target=0.3)
    with pytest.raises(SteeringConfigError, match="belong to different steering methods"):
        Steerer(model, tokenizer, alpha=0.1, boost=3.0)
    with pytest.raises(SteeringConfigError, match="boost must be >= 1"):
        Steerer(model, tokenizer, method="instaboost", boost=0.5)
    with pytest.raises(SteeringConfigError, match=r"target must be a share of attention in \(0, 1\)"):
        Steerer(model, tokenizer, method="spotlight", target=0.0)


def test_a_model_without_profiled_heads_gets_the_profiling_free_default_and_says_so(model, tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="attnsteer"):
        steerer = Steerer(model, tokenizer)
    assert steerer.method.name == PROFILING_FREE_DEFAULT
    assert ("no profiled head set for this model (none shipped, none installed by `attnsteer profile --install`); "
            f"steering with {steerer.method.describe()}") in caplog.text


def test_the_method_follows_from_its_parameters(model, tokenizer):
    assert Steerer(model, tokenizer, boost=3.0).method == make_method("instaboost", model, boost=3.0)
    assert Steerer(model, tokenizer, target=0.4).method == Spotlight(0.4, Spotlight.granularity)
    assert Steerer(model, tokenizer, heads="0.1", alpha=0.1).method.to_dict() == {
        "method": "pasta", "heads": "0.1", "alpha": 0.1, "mode": "exclude"}


def test_with_options_switches_methods_and_keeps_the_rest(model, tokenizer):
    pasta = Steerer(model, tokenizer, heads="0.1,2", alpha=0.1)
    spot = pasta.with_options(method="spotlight", granularity="layer")
    assert spot.method == Spotlight(Spotlight.target, "layer") and spot.row_steering.spotlight is not None
    assert spot.with_options(target=0.5).method == Spotlight(0.5, "layer")
    back = spot.with_options(method="pasta", heads="1")
    assert back.method.to_dict() == {"method": "pasta", "heads": "1.0,1.1,1.2,1.3", "alpha": 0.01, "mode": "exclude"}
    assert pasta.with_options(alpha=0.5).method.to_dict()["heads"] == str(pasta.heads)


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "gpt2"])
def test_instaboost_equals_multiplying_the_span_on_every_head(architecture, tokenizer):
    model = tiny_model(architecture)
    enc, emphasis = encode(tokenizer, PROMPTS)
    steerer = Steerer(model, tokenizer, method="instaboost", boost=4.0)
    mask = enc["attention_mask"].bool()
    with torch.no_grad(), steerer.steered(enc, emphasis):
        steered = model(**enc).logits
    factor = torch.where(emphasis & mask, torch.tensor(4.0), torch.tensor(1.0))
    with torch.no_grad(), reference_steering(model, ReferenceSpec(steerer.heads, factor)):
        reference = model(**enc).logits
    assert steerer.heads.num_heads_steered == 12
    assert (steered - reference)[mask].abs().max() <= 1e-4


@pytest.mark.parametrize("method", ["instaboost", "spotlight"])
def test_generate_steers_with_each_method(model, tokenizer, method):
    steerer = Steerer(model, tokenizer, method=method, **({"boost": 50.0} if method == "instaboost" else
                                                          {"target": 0.9, "granularity": "head"}))
    prompt = "She is a nurse who works at the hospital. **He is a software engineer in Seattle.**"
    steered = steerer.generate(prompt, max_new_tokens=6)
    assert steered != steerer.generate(prompt, max_new_tokens=6, steer=False)


def test_names_and_parameters_are_checked_without_a_model():
    assert check_method(None, {"target": 0.3}) == "spotlight"
    assert check_method("pasta", {"heads": "11.2", "alpha": 0.1}) == "pasta"
    with pytest.raises(SteeringConfigError, match="--boost is not a parameter of steering method 'pasta'; its "
                                                  "parameters: --heads, --alpha, --mode"):
        check_method("pasta", {"boost": 3.0}, spell=lambda name: f"--{name}")
    with pytest.raises(SteeringConfigError, match="boost must be >= 1"):
        check_method(None, {"boost": 0.5})
    assert method_defaults("spotlight") == {"target": 0.3, "granularity": "head"}
    assert method_defaults("pasta") == {"heads": None, "alpha": 0.01, "mode": "exclude"}


def test_equal_settings_are_one_method(model):
    assert make_method("instaboost", model, boost=5) == make_method("instaboost", model, boost=5.0)
    assert make_method("instaboost", model, boost=5).to_dict() == {"method": "instaboost", "boost": 5.0}
