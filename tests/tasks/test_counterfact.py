from __future__ import annotations

import json
import random
from importlib.resources import files

import pytest

from attnsteer.tasks import TaskDataError
from attnsteer.tasks.counterfact import CounterFact
from attnsteer.tasks.text_metrics import n_gram_entropy


@pytest.fixture(scope="module")
def task():
    return CounterFact()


def record(case_id=7, **rewrite):
    fields = {"prompt": "{} is located in", "subject": "Angola", "target_new": {"str": "Antarctica"},
              "target_true": {"str": "Africa"}, **rewrite}
    return {"case_id": case_id, "requested_rewrite": fields,
            "paraphrase_prompts": ["Angola belongs to the continent of"],
            "generation_prompts": ["People around Angola speak", "unused"]}


def write(tmp_path, records):
    path = tmp_path / "cf.json"
    path.write_text(json.dumps(records))
    return path


def test_split_sizes(task):
    kinds = {}
    for example in task.examples("test"):
        kinds[example.id.split("/")[2]] = kinds.get(example.id.split("/")[2], 0) + 1
    assert kinds == {"rewrite": 300, "paraphrase": 600, "generate": 300}
    assert len(task.examples("train")) == len(task.examples("valid")) == 400
    assert len(task.examples("test", limit=5)) == 20


def test_splits_follow_the_seed_0_permutation_of_the_provisional_heads_script(task):
    records = json.loads(files("attnsteer.tasks").joinpath("data", "counterfact_500.json").read_text())
    random.Random(0).shuffle(records)
    case_ids = {split: [e.id.split("/")[1] for e in task.examples(split) if e.id.endswith("/rewrite")]
                for split in ("train", "valid", "test")}
    assert case_ids["train"] == [str(r["case_id"]) for r in records[:100]]
    assert case_ids["valid"] == [str(r["case_id"]) for r in records[100:200]]
    assert case_ids["test"] == [str(r["case_id"]) for r in records[200:]]
    # the script's prompt, markup removed, is this task's rewrite prompt
    rewrite = records[0]["requested_rewrite"]
    fact = rewrite["prompt"].format(rewrite["subject"])
    new, true = rewrite["target_new"]["str"], rewrite["target_true"]["str"]
    example = task.examples("train", limit=1)[0]
    assert example.prompt == f"Previously, {fact} {true}. Currently, {fact} {new}. {fact}"
    assert example.emphasised() == [f"Currently, {fact} {new}."]
    assert example.candidates == (" " + new, " " + true)


def test_examples_of_one_record(tmp_path):
    rewrite, paraphrase, generate = CounterFact(write(tmp_path, [record()])).examples("test")
    context = "Previously, Angola is located in Africa. Currently, Angola is located in Antarctica."
    assert rewrite.id == "counterfact/7/rewrite" and rewrite.kind == "score"
    assert rewrite.prompt == context + " Angola is located in"
    assert paraphrase.prompt == context + " Angola belongs to the continent of"
    assert paraphrase.id == "counterfact/7/paraphrase/0"
    assert generate.prompt == context + " People around Angola speak"
    for example in (rewrite, paraphrase, generate):
        assert example.emphasised() == ["Currently, Angola is located in Antarctica."]
    assert (rewrite.gold, rewrite.answer, generate.answer) == (0, " Antarctica", " Antarctica.")
    assert (generate.kind, generate.max_new_tokens) == ("generate", 30)


def test_score_metrics(tmp_path):
    task = CounterFact(write(tmp_path, [record()]))
    rewrite, paraphrase, _ = task.examples("test")
    assert task.score_metrics(rewrite, [(-1.0, 2), (-3.0, 1)]) == {"efficacy": 1.0}
    assert task.score_metrics(rewrite, [(-3.0, 1), (-1.0, 1)]) == {"efficacy": 0.0}
    assert task.score_metrics(rewrite, [(-2.0, 1), (-2.0, 1)]) == {"efficacy": 0.0}
    assert task.score_metrics(paraphrase, [(-1.0, 1), (-3.0, 1)]) == {"paraphrase": 1.0}
    with pytest.raises(TaskDataError, match="got 1 log-probs for 2 candidates"):
        task.score_metrics(rewrite, [(-1.0, 1)])


@pytest.mark.parametrize(
    ("output", "consistent"),
    [(" Antarctic languages. Antarctica is cold.", 1.0), (" antarctica, not Africa.", 0.0),
     (" Africa is big.", 0.0), ("", 0.0), (" Antarcticans", 0.0)],
)
def test_generation_metrics(tmp_path, output, consistent):
    task = CounterFact(write(tmp_path, [record()]))
    generate = task.examples("test")[2]
    metrics = task.generation_metrics(generate, output)
    assert metrics["consistency"] == consistent
    assert metrics["fluency"] == pytest.approx(n_gram_entropy(output))  # ROME's entropy of the output alone


def test_consistency_when_the_new_target_contains_the_true_one(tmp_path):
    task = CounterFact(write(tmp_path, [record(target_new={"str": "New York"}, target_true={"str": "York"})]))
    generate = task.examples("test")[2]
    assert task.generation_metrics(generate, " New York is big")["consistency"] == 1.0
    assert task.generation_metrics(generate, " New York, not York")["consistency"] == 0.0


def test_aggregate(task):
    result = task.aggregate([{"efficacy": 1.0}, {"efficacy": 0.0}, {"paraphrase": 1.0},
                             {"fluency": 5.0, "consistency": 1.0}, {"fluency": 3.0, "consistency": 0.0}])
    assert result == {"efficacy": 50.0, "paraphrase": 100.0, "fluency": 4.0, "consistency": 50.0, "average": 75.0}
    assert list(result) == ["efficacy", "paraphrase", "fluency", "consistency", "average"]
    assert task.aggregate([{"fluency": 2.0}]) == {"fluency": 2.0}


def test_optional_prompts_and_index_ids(tmp_path):
    bare = {"requested_rewrite": record()["requested_rewrite"]}
    examples = CounterFact(write(tmp_path, [bare])).examples("test")
    assert [e.id for e in examples] == ["counterfact/0/rewrite"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("requested_rewrite"), r"record 1 \(case_id 7\): field 'requested_rewrite' is missing"),
        (lambda r: r["requested_rewrite"].pop("subject"), r"record 1 .*'requested_rewrite.subject' is missing"),
        (lambda r: r["requested_rewrite"]["target_new"].update(str=3),
         r"record 1 .*'requested_rewrite.target_new.str' must be a string, got 3"),
        (lambda r: r["requested_rewrite"].update(target_true="Africa"),
         r"'requested_rewrite.target_true' must be an object"),
        (lambda r: r["requested_rewrite"].update(prompt="Angola is in"), r"must contain '\{\}' once"),
        (lambda r: r.update(paraphrase_prompts="x"), r"'paraphrase_prompts' must be a list"),
        (lambda r: r.update(generation_prompts=["ok", ""]), r"'generation_prompts\[1\]' must be a non-empty"),
        (lambda r: r.update(case_id=1), r"record 1: case_id 1 is not unique"),
    ],
)
def test_bad_user_records_name_the_record_and_field(tmp_path, change, message):
    bad = record()
    change(bad)
    with pytest.raises(TaskDataError, match=message):
        CounterFact(write(tmp_path, [record(case_id=1), bad]))


def test_bad_user_files(tmp_path):
    (tmp_path / "bad.json").write_text('[{"case_id": 1,}]')
    with pytest.raises(TaskDataError, match=r"bad.json: invalid JSON at line 1 column"):
        CounterFact(tmp_path / "bad.json")
    with pytest.raises(TaskDataError, match="expected a JSON list"):
        CounterFact(write(tmp_path, {"case_id": 1}))
    with pytest.raises(TaskDataError, match="record 0: expected a JSON object"):
        CounterFact(write(tmp_path, [[1]]))
    with pytest.raises(TaskDataError, match="cannot read task data file"):
        CounterFact(tmp_path / "missing.json")
