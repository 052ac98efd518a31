"""The evaluation methods `instaboost` and `spotlight`: PASTA's prompt steered by another steering method, their
strengths from `evaluate` / `run_evaluation`, the steering recorded in each run's config, and their sweeps."""

from __future__ import annotations

import pytest
from tests.tiny_models import tiny_model

from attnsteer.errors import AttnsteerError, SteeringConfigError
from attnsteer.evaluation.methods import (
    check_parameters_used,
    expand_methods,
    get_method,
    methods_using,
    render,
)
from attnsteer.evaluation.runner import evaluate
from attnsteer.evaluation.sweeps import run_evaluation
from attnsteer.steering.methods import method_defaults

OPTIONS = {"limit": 2, "progress": False}


@pytest.fixture(scope="module")
def steerer(tokenizer):
    """A tiny Llama steered with PASTA on layer 1 (what the new methods must switch away from)."""
    from attnsteer.steerer import Steerer

    return Steerer(tiny_model("llama"), tokenizer, heads="1", markup=None)


def scores(result) -> list[float]:
    return [score for prediction in result.predictions if "scores" in prediction
            for score, _ in prediction["scores"]]


def run(steerer, method: str, task: str = "counterfact", **parameters):
    return evaluate(steerer.model, steerer.tokenizer, task, method, steerer=steerer, **OPTIONS, **parameters)


def test_the_new_methods_render_pastas_prompt_and_depend_on_their_own_parameters():
    from tests.evaluation.test_methods import EXAMPLE

    for name in ("instaboost", "spotlight", "spa"):
        assert render(name, EXAMPLE) == render("pasta", EXAMPLE)
    assert get_method("instaboost").parameters == ("boost",)
    assert get_method("spotlight").parameters == ("target", "granularity")
    assert get_method("spa").parameters == ("spa_strength",)
    assert get_method("pasta").parameters == get_method("llmsteer").parameters == ("heads", "alpha", "mode")
    assert get_method("zero-shot").parameters == ()
    methods = expand_methods(["all", "instaboost", "spotlight", "spa"])
    assert methods_using("alpha", methods) == ["pasta", "few-shot+pasta"]
    assert methods_using("boost", methods) == ["instaboost"]
    assert "instaboost" not in expand_methods(["all"])  # "all" stays the PASTA paper's six


def test_a_parameter_no_listed_method_uses_is_an_error_naming_the_method_that_does():
    check_parameters_used(["pasta", "instaboost"], {"boost": [2.0], "target": None, "spa_strength": []})
    with pytest.raises(AttnsteerError, match="--boost is given but none of the methods zero-shot, pasta uses it; "
                                             "add instaboost to the methods"):
        check_parameters_used(["zero-shot", "pasta"], {"boost": [2.0]}, lambda name: f"--{name}")
    with pytest.raises(AttnsteerError, match="granularity is given .* add spotlight"):
        check_parameters_used(["pasta"], {"granularity": "head"})


def test_instaboost_at_boost_1_is_the_plain_model_and_a_boost_changes_the_scores(steerer):
    plain = scores(run(steerer, "zero-shot"))
    assert scores(run(steerer, "instaboost", boost=1.0)) == pytest.approx(plain, abs=1e-4)
    boosted = run(steerer, "instaboost", boost=20.0)
    assert boosted.config["steering"] == {"method": "instaboost", "boost": 20.0}
    assert max(abs(a - b) for a, b in zip(scores(boosted), plain, strict=True)) > 1e-3


@pytest.mark.parametrize("granularity", ["layer", "head"])
def test_spotlight_records_its_target_and_changes_the_scores(steerer, granularity):
    result = run(steerer, "spotlight", target=0.9, granularity=granularity)
    assert result.config["steering"] == {"method": "spotlight", "target": 0.9, "granularity": granularity}
    plain = scores(run(steerer, "zero-shot"))
    assert max(abs(a - b) for a, b in zip(scores(result), plain, strict=True)) > 1e-3


def test_each_run_records_the_steering_it_ran_and_the_steerer_passed_in_is_left_as_it_was(steerer):
    assert run(steerer, "spotlight").config["steering"] == {"method": "spotlight",
                                                             **method_defaults("spotlight")}  # its defaults
    assert run(steerer, "pasta", alpha=0.5).config["steering"] == {"method": "pasta", "heads": "1.0,1.1,1.2,1.3",
                                                                    "alpha": 0.5, "mode": "exclude"}
    assert run(steerer, "zero-shot").config["steering"] is None
    assert steerer.method.to_dict()["method"] == "pasta" and steerer.config.alpha == 0.01
    instaboosted = steerer.with_options(method="instaboost", boost=3.0)
    assert run(instaboosted, "instaboost").config["steering"] == {"method": "instaboost", "boost": 3.0}
    assert run(instaboosted, "pasta", heads="0.1").config["steering"]["heads"] == "0.1"


def test_a_bad_strength_is_refused_naming_the_parameter(steerer):
    with pytest.raises(SteeringConfigError, match="boost must be >= 1"):
        run(steerer, "instaboost", boost=0.5)
    with pytest.raises(SteeringConfigError, match="target must be a share of attention in"):
        run(steerer, "spotlight", target=1.5)


def test_boost_and_target_sweeps_rerun_only_their_methods(steerer):
    report = run_evaluation(steerer.model, steerer.tokenizer, ["counterfact"], ["zero-shot", "instaboost", "spotlight"],
                            boost=[2.0, 8.0], target=[0.3, 0.6], granularity="head", **OPTIONS)
    table = {result.method: result for result in report.results}
    assert table["instaboost"].config["steering"] == {"method": "instaboost", "boost": 2.0}  # the first value
    assert table["spotlight"].config["steering"] == {"method": "spotlight", "target": 0.3, "granularity": "head"}
    sweeps = report.sweeps_json()
    assert [(point["boost"], point["method"]) for point in sweeps["boost_sweep"]] == [
        (2.0, "instaboost"), (8.0, "instaboost")]
    assert [(point["target"], point["method"]) for point in sweeps["target_sweep"]] == [
        (0.3, "spotlight"), (0.6, "spotlight")]
    assert sweeps["boost_sweep"][0]["metrics"] == table["instaboost"].metrics
    assert sweeps["alpha_sweep"] == sweeps["num_heads_sweep"] == sweeps["spa_strength_sweep"] == []
    with pytest.raises(AttnsteerError, match="boost is given but none of the methods pasta uses it"):
        run_evaluation(steerer.model, steerer.tokenizer, ["counterfact"], ["pasta"], boost=[2.0], **OPTIONS)
