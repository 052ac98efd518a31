"""`torchrun --nproc-per-node 2 -m attnsteer eval` on a tiny model writes the JSON one process writes: the same
bytes apart from "world_size" and the runs' timing ("seconds"); rank 0 alone prints, on its share of the work."""

from __future__ import annotations

import re

from tests.test_distributed import run_attnsteer

from attnsteer.distributed import shard
from attnsteer.evaluation.runner import work_units
from attnsteer.tasks import get_task

TIMING = re.compile(r'^\s*"(seconds|world_size)": .*\n', re.MULTILINE)


def test_two_ranks_write_the_json_and_table_of_one_process(model_dir, tmp_path):
    args = ["eval", "--task", "counterfact", "--method", "zero-shot,pasta", "--limit", "2", "--model", str(model_dir),
            "--heads", "0.1,1", "--batch-size", "2", "--json", "results.json"]
    one = run_attnsteer(args, tmp_path / "one", ranks=1)
    two = run_attnsteer(args, tmp_path / "two", ranks=2)
    single, double = ((tmp_path / name / "results.json").read_text() for name in ("one", "two"))
    assert '\n "world_size": 1,\n' in single and '\n "world_size": 2,\n' in double
    assert TIMING.sub("", double) == TIMING.sub("", single)
    assert two.stdout == one.stdout  # the table, once: rank 0 alone prints
    assert "running on 2 ranks (gloo)" in two.stderr and "running on" not in one.stderr
    # score examples one by one, generate examples in batches of 2: rank 0's bar counts its share of them
    examples = get_task("counterfact")().examples("test", 2)
    units = work_units(examples, "pasta", 2)
    assert {len(unit) for unit in units} == {1, 2}
    share = sum(map(len, shard(units, 0, 2)))
    assert 0 < share < len(examples)
    assert f"/{share} examples" in two.stderr and f"/{len(examples)} examples" in one.stderr
