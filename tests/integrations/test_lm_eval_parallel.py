"""The lm-eval adapter in parallel: several processes (lm-eval's data parallelism, a real 2-process run on the CPU)
and a model spread over devices (`parallelize`, `device_map`), each giving what one process and one device give."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from attnsteer.integrations.lm_eval_arguments import LMEvalArgumentError, placement_arguments
from attnsteer.integrations.lm_eval_model import AttnsteerLM
from attnsteer.models.placement import PlacementError
from tests.integrations.test_lm_eval_model import CHOICE_YAML, CONTEXTS, CONTINUATIONS, requests

OFFLOADED = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
             "model.layers.2": "disk", "model.norm": "cpu", "lm_head": "disk"}
GIB = 2**30


def test_model_parallel_arguments_become_load_model_placements():
    assert placement_arguments() == {} and placement_arguments(parallelize="false") == {}
    assert placement_arguments(parallelize=True) == {"device_map": "auto"}  # as lm-eval's hf model
    assert placement_arguments(parallelize="true", max_cpu_memory="1GB") == {
        "device_map": "auto", "max_memory": {"cpu": 10**9}}
    assert placement_arguments(device_map="sequential", max_memory_per_gpu="2GiB", gpus={1: 5, 3: 7}) == {
        "device_map": "sequential", "max_memory": {1: 2 * GIB, 3: 2 * GIB}}  # this process's share of the GPUs
    assert placement_arguments(parallelize=True, gpus={0: 123}) == {"device_map": "auto", "max_memory": {0: 123}}
    assert placement_arguments(device_map=OFFLOADED, offload_folder="/tmp/o") == {
        "device_map": OFFLOADED, "offload_folder": "/tmp/o"}
    assert placement_arguments(device_map="0") == {"device_map": 0}


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"max_cpu_memory": "1GB"}, LMEvalArgumentError, "max_cpu_memory go with parallelize=true or a device_map"),
    ({"device_map": OFFLOADED, "max_memory_per_gpu": "1GB"}, LMEvalArgumentError, "max_memory_per_gpu go with "
     "device_map auto, balanced, balanced_low_0, sequential (accelerate's placement), not with device_map {"),
    ({"parallelize": "maybe"}, LMEvalArgumentError, "parallelize must be true or false, got 'maybe'"),
    ({"device_map": "everywhere"}, PlacementError, "device_map must be a placement (auto, balanced"),
    ({"parallelize": True, "max_cpu_memory": "a lot"}, PlacementError, "max_memory for 'cpu' must be a positive"),
])
def test_bad_model_parallel_arguments_raise_before_loading(monkeypatch, arguments, error, message):
    monkeypatch.setattr("attnsteer.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(error) as raised:
        AttnsteerLM(pretrained="/nonexistent", **arguments)
    assert message in str(raised.value)


def scores(lm: AttnsteerLM) -> list[float]:
    """The adapter's steered log-likelihoods of CONTINUATIONS after CONTEXTS (last sentence emphasised)."""
    results = lm.loglikelihood(requests("loglikelihood", list(zip(CONTEXTS, CONTINUATIONS, strict=True))),
                               disable_tqdm=True)
    return [total for total, _ in results]


def test_one_process_is_rank_0_of_1_and_a_placed_model_scores_the_same(tiny_model_dir, tmp_path):
    path = str(tiny_model_dir("llama"))
    common = {"pretrained": path, "heads": "all", "emphasis": "last_sentence", "batch_size": 2}
    lm = AttnsteerLM(**common)
    assert (lm.rank, lm.world_size, lm.accelerator, lm.device) == (0, 1, None, torch.device("cpu"))
    count = torch.tensor(3)
    assert lm.all_gather(count) is count and lm.gather_object({"a": 1}) == [{"a": 1}]
    offloaded = AttnsteerLM.create_from_arg_obj({**common, "device_map": OFFLOADED, "offload_folder": str(tmp_path)})
    parallel = AttnsteerLM.create_from_arg_string(f"pretrained={path},heads=all,emphasis=last_sentence,"
                                                  "parallelize=True,max_cpu_memory=250KB,batch_size=2")
    assert offloaded.model.hf_device_map == OFFLOADED and "disk" in parallel.model.hf_device_map.values()
    plain = [score for score in scores(lm)]
    assert scores(offloaded) == pytest.approx(plain, abs=1e-5) and scores(parallel) == pytest.approx(plain, abs=1e-5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_choice_task(folder, docs: int = 6) -> str:
    """A multiple-choice task of `docs` documents in `folder` (its include path)."""
    data = folder / "choice.jsonl"
    rows = [{"context": context, "choices": ["Rome", "Paris", "Seattle"], "answer": index % 3}
            for index, context in enumerate((CONTEXTS * docs)[:docs])]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "tiny_choice.yaml").write_text(CHOICE_YAML.format(data=data))
    return str(folder)


def test_two_processes_give_the_metrics_of_one(tiny_model_dir, tmp_path, monkeypatch):
    """`accelerate launch` with 2 CPU processes: each scores half of the documents (lm-eval splits them by rank) and
    rank 0 reports the metrics and samples of all, equal to a single process's.

    `--multi_gpu` starts the 2 processes (torch.distributed.run); `--cpu` would start one: accelerate's launcher runs
    several CPU processes only through mpirun. The adapter joins them over gloo on a machine without a GPU.
    """
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    include = tiny_choice_task(tasks)
    model_args = f"pretrained={tiny_model_dir('llama')},heads=all,emphasis=last_sentence"
    environment = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(free_port()), "-m", "attnsteer.integrations.lm_eval_cli", "run", "--model", "attnsteer",
               "--model_args", model_args, "--tasks", "tiny_choice", "--include_path", include, "--batch_size", "4",
               "--log_samples", "--output_path", str(tmp_path / "out")]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=480)
    assert finished.returncode == 0, finished.stderr[-3000:]
    for rank in (0, 1):  # each rank built its own half of the requests and scored them
        assert f"Building contexts for tiny_choice on rank {rank}" in finished.stderr
    assert finished.stderr.count("emphasis rule last_sentence: 9 requests steered") == 2  # 3 docs x 3 choices each
    [results_file] = list((tmp_path / "out").glob("*/results_*.json"))
    [samples_file] = list((tmp_path / "out").glob("*/samples_tiny_choice_*.jsonl"))
    two = json.loads(results_file.read_text())["results"]["tiny_choice"]
    two_samples = {row["doc_id"]: row for row in map(json.loads, samples_file.read_text().splitlines())}

    one = lm_eval.simple_evaluate(model="attnsteer", model_args=model_args, tasks=["tiny_choice"], batch_size=4,
                                  task_manager=TaskManager(include_path=include, include_defaults=False),
                                  log_samples=True)
    assert sorted(two_samples) == list(range(6))
    for sample in one["samples"]["tiny_choice"]:
        other = two_samples[sample["doc_id"]]
        assert [float(r[0][0]) for r in other["resps"]] == pytest.approx([r[0][0] for r in sample["resps"]], abs=1e-5)
        assert other["acc"] == sample["acc"]
    assert two["acc,none"] == pytest.approx(one["results"]["tiny_choice"]["acc,none"])
    assert two["acc_stderr,none"] == pytest.approx(one["results"]["tiny_choice"]["acc_stderr,none"])
