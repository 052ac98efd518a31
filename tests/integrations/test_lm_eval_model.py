"""The lm-eval adapter on a tiny random-weight model: requests against the Steerer, and whole lm-eval runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lm_eval.api.instance import Instance

from attnsteer.errors import AttnsteerError
from attnsteer.integrations.lm_eval_cli import lm_eval_arguments
from attnsteer.integrations.lm_eval_model import AttnsteerLM, LMEvalArgumentError, mark_spans
from attnsteer.steering.methods import PROFILING_FREE_DEFAULT, method_defaults

CONTEXTS = [
    "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. "
    "The Eiffel Tower is located in the city of",
    "She is a nurse who works at the hospital. He is a software engineer in",
    "Answer the occupation",
]
CONTINUATIONS = [" Rome", " Seattle", " of the person"]


@pytest.fixture(scope="module")
def adapter(tiny_model_dir):
    return AttnsteerLM(pretrained=str(tiny_model_dir("llama")), heads="all", emphasis="last_sentence", batch_size=2)


def requests(kind, arguments, docs=None):
    docs = docs or [{}] * len(arguments)
    return [Instance(kind, doc, args, index, ("t", index, 1))
            for index, (args, doc) in enumerate(zip(arguments, docs, strict=True))]


def last_sentence(context):
    start = context.rstrip().rfind(". ") + 2 if ". " in context else 0
    return [(start, len(context.rstrip()))]


def test_loglikelihood_batches_equal_steerer_scores_one_by_one(adapter):
    results = adapter.loglikelihood(requests("loglikelihood", list(zip(CONTEXTS, CONTINUATIONS, strict=True))),
                                    disable_tqdm=True)
    for (total, greedy), context, continuation in zip(results, CONTEXTS, CONTINUATIONS, strict=True):
        steered = adapter.steerer.score(context, continuation, emphasize=[last_sentence(context)])
        plain = adapter.steerer.score(context, continuation, steer=False)
        assert total == pytest.approx(steered, abs=1e-3)
        assert abs(steered - plain) > 1e-3  # steering changed the score
        assert isinstance(greedy, bool)


def greedy_token(adapter, context):
    import torch

    encoded = adapter.steerer.encode(context, emphasize=[last_sentence(context)])
    with torch.inference_mode(), adapter.steerer.steered(encoded.encodings, encoded.emphasis_mask):
        return int(adapter.model(**encoded.encodings).logits[0, -1].argmax())


def round_trips(adapter, context, token):
    text = adapter.tokenizer.decode([token])
    return adapter.tokenizer(context + text)["input_ids"][len(adapter.tokenizer(context)["input_ids"]) :] == [token]


def test_loglikelihood_reports_the_greedy_continuation(adapter):
    candidates = [c + suffix for c in CONTEXTS for suffix in ("", " Paris.", " is")]
    found = [(c, greedy_token(adapter, c)) for c in candidates]
    found = [(c, token) for c, token in found if round_trips(adapter, c, token)
             and round_trips(adapter, c, (token + 1) % adapter.tokenizer.vocab_size)]
    assert found, "no context whose greedy token survives decode/encode"
    context, best = found[0]
    texts = [adapter.tokenizer.decode([token]) for token in (best, (best + 1) % adapter.tokenizer.vocab_size)]
    results = adapter.loglikelihood(requests("loglikelihood", [(context, text) for text in texts]), disable_tqdm=True)
    assert [greedy for _, greedy in results] == [True, False]


def test_generation_equals_steerer_per_row_and_stops_at_until(adapter):
    arguments = [(context, {"until": ["\n"], "max_gen_toks": 6}) for context in CONTEXTS]
    texts = adapter.generate_until(requests("generate_until", arguments), disable_tqdm=True)
    for text, context in zip(texts, CONTEXTS, strict=True):
        alone = adapter.steerer.generate(context, emphasize=[last_sentence(context)], max_new_tokens=6)
        assert text == alone.split("\n")[0]


def test_rows_without_a_span_run_plain(tiny_model_dir):
    lm = AttnsteerLM(pretrained=str(tiny_model_dir("llama")), heads="all", emphasis="regex:Eiffel Tower")
    arguments = [(context, {"until": [], "max_gen_toks": 5}) for context in CONTEXTS[:2]]
    texts = lm.generate_until(requests("generate_until", arguments), disable_tqdm=True)
    assert texts[1] == lm.steerer.generate(CONTEXTS[1], max_new_tokens=5, steer=False)
    every_tower = [(span.start, span.end) for span in lm.rule.spans(CONTEXTS[0])]
    assert len(every_tower) == 3
    assert texts[0] == lm.steerer.generate(CONTEXTS[0], emphasize=[every_tower], max_new_tokens=5)
    assert lm.emphasis_counts == {"steered": 1, "unsteered": 1, "no_span": 1}


def test_marked_prompt_is_plain_model_on_marked_text(tiny_model_dir):
    lm = AttnsteerLM(pretrained=str(tiny_model_dir("llama")), heads="all", emphasis="last_sentence", steer=False,
                     mark="star")
    prepared = lm.prepare(CONTEXTS[1], {})
    assert prepared.text == "She is a nurse who works at the hospital. *He is a software engineer in*"
    assert prepared.spans == []  # not steered
    text, spans = mark_spans("a b c", [], "*")
    assert (text, spans) == ("a b c", [])


@pytest.mark.parametrize("arguments, message", [
    ({"emphasis": "third_sentence"}, "unknown emphasis rule"),
    ({"mark": "bold"}, "unknown mark 'bold'; allowed: none, star, quote"),
    ({"steer": "maybe"}, "steer must be true or false"),
    ({"alpha": 2.0}, "alpha"),
    ({"batch_size": "0"}, "batch_size must be a positive integer"),
])
def test_bad_model_arguments_raise_before_loading(arguments, message):
    with pytest.raises(AttnsteerError, match=message):
        AttnsteerLM(pretrained="/nonexistent", **arguments)


@pytest.mark.parametrize("arguments, message", [
    ({"batch_size": "0"}, "batch_size must be a positive integer or 'auto', got '0'"),
    ({"batch_size": "many"}, "batch_size must be a positive integer or 'auto', got 'many'"),
    ({"batch_size": "auto", "max_batch_size": 0}, "max_batch_size must be a positive integer, got 0"),
    ({"steer": "maybe"}, "steer must be true or false, got 'maybe'"),
    ({"alpha": "strong"}, "alpha must be a number, got 'strong'"),
    ({"device": "gpu"}, "device must be a torch device such as cpu or cuda:0, got 'gpu'"),
])
def test_bad_lm_eval_arguments_are_lm_eval_argument_errors(arguments, message):
    with pytest.raises(LMEvalArgumentError, match=message):
        AttnsteerLM(pretrained="/nonexistent", **arguments)


class Loaded(Exception):
    """Stops the adapter right after load_model, with the arguments it was given."""


@pytest.mark.parametrize("arguments, batch_size, device", [
    ({"batch_size": "auto"}, 8, "cpu"),
    ({"batch_size": "auto:4", "max_batch_size": 3, "device": "meta"}, 3, "meta"),
    ({"batch_size": 4, "max_batch_size": 16, "device": "cpu"}, 4, "cpu"),
])
def test_batch_size_auto_uses_max_batch_size_and_the_device_reaches_load_model(monkeypatch, arguments, batch_size,
                                                                                device):
    import attnsteer.models

    def fake_load_model(name, device="cpu"):
        raise Loaded(device)

    monkeypatch.setattr(attnsteer.models, "load_model", fake_load_model)
    lm = object.__new__(AttnsteerLM)
    with pytest.raises(Loaded) as info:
        AttnsteerLM.__init__(lm, pretrained="/nonexistent", **arguments)
    assert info.value.args == (device,) and lm.batch_size == batch_size


def test_a_device_this_machine_lacks_falls_back_to_cpu(monkeypatch, caplog):
    import torch

    from attnsteer.integrations.lm_eval_arguments import resolve_device

    def unavailable(*args, device=None, **kwargs):
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(torch, "empty", unavailable)
    assert resolve_device("cuda:0") == "cpu"
    assert "device cuda:0 is not available here" in caplog.text


def test_instruction_rule_on_a_task_without_ifeval_fields(adapter, tiny_model_dir):
    lm = AttnsteerLM(pretrained=str(tiny_model_dir("llama")), heads="all", emphasis="instruction")
    with pytest.raises(AttnsteerError, match="needs documents with 'prompt' and 'prompt_without_instruction'"):
        lm.loglikelihood(requests("loglikelihood", [(CONTEXTS[0], " Rome")], [{"question": "q"}]))


CHOICE_YAML = """task: tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""


def chosen_choice(sample: dict) -> int:
    """The index of the choice with the highest logged log-likelihood (lm-eval's `acc` picks it)."""
    log_likelihoods = [resp[0][0] for resp in sample["resps"]]
    return log_likelihoods.index(max(log_likelihoods))


def test_lm_eval_runs_a_loglikelihood_task_steered(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    data = tmp_path / "choice.jsonl"
    docs = [{"context": CONTEXTS[0], "choices": ["Rome", "Paris"], "answer": 0},
            {"context": CONTEXTS[1], "choices": ["Seattle", "Paris"], "answer": 0},
            {"context": CONTEXTS[2], "choices": ["of", "the"], "answer": 1}]
    data.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    (tmp_path / "tiny_choice.yaml").write_text(CHOICE_YAML.format(data=data))
    scores = {}
    for emphasis in ("none", "last_sentence"):
        output = lm_eval.simple_evaluate(
            model="attnsteer", model_args={"pretrained": str(tiny_model_dir("llama")), "heads": "all",
                                           "emphasis": emphasis},
            tasks=["tiny_choice"], task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
            limit=2, batch_size=4, log_samples=True)
        assert output["n-samples"]["tiny_choice"]["effective"] == 2
        recorded = output["config"]  # the steering in effect (get_model_info), next to lm-eval's own settings
        assert recorded["emphasis_rule"] == emphasis
        assert recorded["steering"] == (None if emphasis == "none" else {
            "method": "pasta", "heads": "0.0,0.1,0.2,0.3,1.0,1.1,1.2,1.3,2.0,2.1,2.2,2.3", "alpha": 0.01,
            "mode": "exclude"})
        samples = output["samples"]["tiny_choice"]
        correct = [chosen_choice(sample) == sample["doc"]["answer"] for sample in samples]
        assert [sample["acc"] for sample in samples] == [float(flag) for flag in correct]
        assert output["results"]["tiny_choice"]["acc,none"] == pytest.approx(sum(correct) / len(correct))
        scores[emphasis] = [resp[0][0] for sample in samples for resp in sample["resps"]]
    assert len(scores["none"]) == 4
    assert scores["none"] != pytest.approx(scores["last_sentence"], abs=1e-4)


def test_cli_runs_ifeval_through_lm_evals_checker(tiny_model_dir, tmp_path):
    """`attnsteer-lm-eval run --model attnsteer ...`: the registered model, the offline task and checker."""
    environment = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "attnsteer.integrations.lm_eval_cli", "run", "--model", "attnsteer",
               "--model_args", f"pretrained={tiny_model_dir('llama')},heads=1.0+1.1,emphasis=instruction",
               "--tasks", "ifeval_local", "--limit", "2", "--gen_kwargs", "max_gen_toks=4",
               "--output_path", str(tmp_path / "out"), "--log_samples"]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "emphasis rule instruction: 2 requests steered" in finished.stderr
    [results_file] = list((tmp_path / "out").glob("*/results_*.json"))
    results = json.loads(results_file.read_text())["results"]["ifeval_local"]
    [samples_file] = list((tmp_path / "out").glob("*/samples_ifeval_local_*.jsonl"))
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 2
    from attnsteer.integrations.lm_eval_tasks.ifeval_local_utils import process_results

    for sample in samples:  # each logged verdict is lm-eval's checker on the logged response
        checked = process_results(sample["doc"], [sample["filtered_resps"][0]])
        assert {metric: sample[metric] for metric in checked} == checked
    for level in ("strict", "loose"):  # the reported accuracies are the means of those verdicts
        prompts = [sample[f"prompt_level_{level}_acc"] for sample in samples]
        instructions = [flag for sample in samples for flag in sample[f"inst_level_{level}_acc"]]
        assert results[f"prompt_level_{level}_acc,none"] == pytest.approx(sum(prompts) / len(prompts))
        assert results[f"inst_level_{level}_acc,none"] == pytest.approx(sum(instructions) / len(instructions))


def test_cli_adds_the_task_folder_only_to_runs():
    assert lm_eval_arguments(["run", "--tasks", "x"], "/d") == ["run", "--tasks", "x", "--include_path", "/d"]
    assert lm_eval_arguments(["--tasks", "x", "--include_path", "/e"], "/d") == ["--tasks", "x", "--include_path",
                                                                                   "/e"]
    assert lm_eval_arguments(["ls", "tasks"], "/d") == ["ls", "tasks"]
    assert lm_eval_arguments(["run", "--help"], "/d") == ["run", "--help"]


def test_plain_lm_eval_finds_the_model_when_given_the_task_folder(tiny_model_dir, tmp_path):
    """`lm_eval --model attnsteer --tasks <attnsteer's task folder>`: the folder's task module registers the model."""
    from attnsteer.integrations.lm_eval_tasks import TASK_DIR

    environment = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "lm_eval", "--model", "attnsteer", "--model_args",
               f"pretrained={tiny_model_dir('llama')},heads=all,emphasis=none", "--tasks", str(TASK_DIR),
               "--limit", "1", "--gen_kwargs", "max_gen_toks=3", "--output_path", str(tmp_path / "out")]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    [results_file] = list((tmp_path / "out").glob("*/results_*.json"))
    assert "prompt_level_strict_acc,none" in json.loads(results_file.read_text())["results"]["ifeval_local"]


# model_args -> the same steering method as `Steerer` takes it (values that change the tiny llama's scores)
STEERING_ARGUMENTS = [
    ("method=pasta,heads=1.0+1.1,alpha=0.05", "pasta", {"heads": "1.0,1.1", "alpha": 0.05}),
    ("method=instaboost,boost=5", "instaboost", {"boost": 5.0}),
    ("method=spotlight,target=0.6,granularity=head", "spotlight", {"target": 0.6, "granularity": "head"}),
]


@pytest.mark.parametrize(("model_args", "method", "parameters"), STEERING_ARGUMENTS)
def test_each_steering_method_equals_the_steerer_and_is_recorded(tiny_model_dir, caplog, model_args, method,
                                                                 parameters):
    from attnsteer import Steerer

    with caplog.at_level("INFO", logger="lm_eval.attnsteer"):
        lm = AttnsteerLM.create_from_arg_string(f"pretrained={tiny_model_dir('llama')},{model_args},"
                                                "emphasis=last_sentence,batch_size=2")
    steerer = Steerer(lm.model, lm.tokenizer, method=method, markup=None, **parameters)
    assert lm.steerer.method == steerer.method
    assert lm.get_model_info() == {"steering": steerer.method.to_dict(), "emphasis_rule": "last_sentence"}
    assert f"attnsteer: steering method {steerer.method.describe()}" in caplog.text
    scores = lm.loglikelihood(requests("loglikelihood", list(zip(CONTEXTS, CONTINUATIONS, strict=True))),
                              disable_tqdm=True)
    for (total, _), context, continuation in zip(scores, CONTEXTS, CONTINUATIONS, strict=True):
        steered = steerer.score(context, continuation, emphasize=[last_sentence(context)])
        assert total == pytest.approx(steered, abs=1e-3)
        assert abs(steered - steerer.score(context, continuation, steer=False)) > 1e-3  # steering changed it
    texts = lm.generate_until(requests("generate_until", [(CONTEXTS[0], {"until": [], "max_gen_toks": 4})]),
                              disable_tqdm=True)
    assert texts == [steerer.generate(CONTEXTS[0], emphasize=[last_sentence(CONTEXTS[0])], max_new_tokens=4)]


def test_without_a_method_the_steerer_default_is_recorded(tiny_model_dir):
    lm = AttnsteerLM(pretrained=str(tiny_model_dir("llama")), emphasis="last_sentence")
    default = {"method": PROFILING_FREE_DEFAULT, **method_defaults(PROFILING_FREE_DEFAULT)}
    assert lm.get_model_info()["steering"] == default  # no head set ships for it
    assert AttnsteerLM(pretrained=str(tiny_model_dir("llama")), heads="all").get_model_info() == {
        "steering": None, "emphasis_rule": "none"}  # the default rule steers nothing


@pytest.mark.parametrize(("arguments", "message"), [
    ({"method": "spotlite"}, "unknown steering method 'spotlite'; choose one of 'pasta', 'instaboost', "
     "'spotlight'; did you mean 'spotlight'?"),
    ({"method": "spotlight", "alpha": 0.5}, "alpha is not a parameter of steering method 'spotlight'; its "
     "parameters: target, granularity"),
    ({"method": "instaboost", "heads": "all"}, "heads is not a parameter of steering method 'instaboost'"),
    ({"boost": 5, "target": 0.3}, "boost, target belong to different steering methods .* choose one with method"),
    ({"method": "instaboost", "boost": 0.5}, "boost must be >= 1"),
    ({"method": "spotlight", "target": 2}, r"target must be a share of attention in \(0, 1\)"),
    ({"method": "spotlight", "granularity": "token"}, "granularity must be one of"),
    ({"boost": "big"}, "boost must be a number, got 'big'"),
])
def test_bad_steering_arguments_raise_before_loading(monkeypatch, arguments, message):
    monkeypatch.setattr("attnsteer.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(AttnsteerError, match=message):
        AttnsteerLM(pretrained="/nonexistent", **arguments)
