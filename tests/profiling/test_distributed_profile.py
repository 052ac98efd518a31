"""`torchrun --nproc-per-node 2 -m attnsteer profile` on a tiny model writes the scores and head files one process
writes (timing apart), for each profiling method and each way of choosing k (on the valid split, too)."""

from __future__ import annotations

import re

import pytest

from tests.test_distributed import run_attnsteer

SCORE_TIMING = re.compile(r'^\s*"seconds": .*\n', re.MULTILINE)
HEAD_TIMING = re.compile(r", \d+ s\)")  # the provenance's "..., alpha 0.01, 3 s)"
PRINTED_TIMING = re.compile(r"\b\d+ s\b")


@pytest.mark.parametrize("method, selection", [
    ("exhaustive", ["--k-grid", "1,2,4", "--n-valid", "2"]),  # k chosen on the valid split
    ("coarse-to-fine", ["--top-layers", "2", "--top-k", "2"]),
    ("gradient", ["--num-heads", "2"]),
])
def test_two_ranks_write_the_files_of_one_process(model_dir, tmp_path, method, selection):
    args = ["profile", "--model", str(model_dir), "--tasks", "json_format,counterfact", "--n-train", "2",
            "--method", method, *selection, "--select", "union", "--out", "heads.json", "--scores", "scores.json"]
    one = run_attnsteer(args, tmp_path / "one", ranks=1)
    two = run_attnsteer(args, tmp_path / "two", ranks=2)

    def written(name: str, file: str, timing: re.Pattern[str]) -> str:
        return timing.sub("", (tmp_path / name / file).read_text())

    assert written("two", "scores.json", SCORE_TIMING) == written("one", "scores.json", SCORE_TIMING)
    assert written("two", "heads.json", HEAD_TIMING) == written("one", "heads.json", HEAD_TIMING)
    assert PRINTED_TIMING.sub("", two.stdout) == PRINTED_TIMING.sub("", one.stdout)  # rank 0 alone prints
    assert "running on 2 ranks (gloo)" in two.stderr
