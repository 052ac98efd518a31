"""Data-parallel eval and profiling on torch.distributed, on the embedded model: same files, and the speedup.

The same `attnsteer eval` (and `attnsteer profile`) command three ways, in one run:

- 1 process x 1 thread (OMP_NUM_THREADS=1): the baseline;
- 1 process x 2 threads: what one process gets from this machine's 2 cores;
- `torchrun --standalone --nproc-per-node 2` x 1 thread each: data parallelism on the same 2 cores.

It checks that the files the runs write are the same bytes apart from timing ("seconds", the head file's
"..., N s)") and "world_size", and prints wall times (model load included: each run is a fresh command) and
ratios, ending with one line

    data_parallel eval_two_ranks_vs_two_threads=<r> eval_two_ranks_vs_one=<r> profile_two_ranks_vs_one=<r> \
        identical=<yes|no>

    python benchmarks/data_parallel.py                           # counterfact zero-shot,pasta, 20 records
    python benchmarks/data_parallel.py --limit 8 --n-train 4     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
TIMING = [re.compile(r'^\s*"(seconds|world_size)": .*\n', re.MULTILINE), re.compile(r", \d+ s\)")]


def run(args: list[str], cwd: Path, ranks: int, threads: int) -> float:
    """Wall seconds of `python -m attnsteer ARGS` (ranks 1) or torchrun with RANKS processes, in `cwd`."""
    launcher = [sys.executable, "-m", "attnsteer"] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "attnsteer"]
    env = {key: value for key, value in os.environ.items() if key not in TORCHRUN_VARIABLES}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cwd.mkdir(parents=True)
    started = time.perf_counter()
    result = subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{ranks} rank(s) x {threads} thread(s) failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return seconds


def without_timing(path: Path) -> str:
    text = path.read_text()
    for pattern in TIMING:
        text = pattern.sub("", text)
    return text


def compare(runs: dict[str, Path], files: list[str]) -> bool:
    """Whether every run wrote the same bytes (timing apart) as the first one, for each of `files`."""
    (first, first_dir), *others = runs.items()
    same = True
    for name, folder in others:
        for file in files:
            equal = without_timing(folder / file) == without_timing(first_dir / file)
            print(f"  {file}: {name} {'==' if equal else '!='} {first}")
            same &= equal
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--task", default="counterfact")
    parser.add_argument("--methods", default="zero-shot,pasta")
    parser.add_argument("--limit", type=int, default=20, help="Test records of the eval task.")
    parser.add_argument("--n-train", type=int, default=8, help="Training items per task of the gradient profile.")
    parser.add_argument("--json", help="Write the figures here.")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="data_parallel_"))
    eval_args = ["eval", "--model", options.model, "--task", options.task, "--method", options.methods,
                 "--limit", str(options.limit), "--json", "results.json"]
    profile_args = ["profile", "--model", options.model, "--method", "gradient", "--n-train", str(options.n_train),
                    "--num-heads", "8", "--out", "heads.json", "--scores", "scores.json"]
    shapes = {"1 rank x 1 thread": (1, 1), "1 rank x 2 threads": (1, 2), "2 ranks x 1 thread": (2, 1)}
    seconds, folders = {}, {}
    for kind, args, kinds in (("eval", eval_args, list(shapes)),
                              ("profile", profile_args, ["1 rank x 1 thread", "2 ranks x 1 thread"])):
        folders[kind] = {}
        for shape in kinds:
            folder = work / kind / shape.replace(" ", "_")
            seconds[(kind, shape)] = run(args, folder, *shapes[shape])
            folders[kind][shape] = folder
            print(f"{kind:8s} {shape:20s} {seconds[(kind, shape)]:8.1f} s", flush=True)
    print("files (timing and world_size apart):")
    identical = compare(folders["eval"], ["results.json"]) & compare(folders["profile"], ["heads.json", "scores.json"])
    two_ranks = {kind: seconds[(kind, "2 ranks x 1 thread")] for kind in ("eval", "profile")}
    figures = {
        "eval_two_ranks_vs_two_threads": seconds[("eval", "1 rank x 2 threads")] / two_ranks["eval"],
        "eval_two_ranks_vs_one": seconds[("eval", "1 rank x 1 thread")] / two_ranks["eval"],
        "profile_two_ranks_vs_one": seconds[("profile", "1 rank x 1 thread")] / two_ranks["profile"],
    }
    print("data_parallel " + " ".join(f"{name}={value:.2f}" for name, value in figures.items())
          + f" identical={'yes' if identical else 'no'}")
    if options.json:
        Path(options.json).write_text(json.dumps({
            "options": vars(options),
            "seconds": {f"{kind} / {shape}": value for (kind, shape), value in seconds.items()},
            "speedups": figures, "identical": identical}, indent=1) + "\n")


if __name__ == "__main__":
    main()
