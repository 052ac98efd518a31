"""How long `load_model(<embedded model>)` takes once its safetensors copy exists, for each embedded model.

Every case runs in a fresh process, imports included, and the cases take turns (the first run of each, then the
second, ...) so a change in the machine's load falls on all of them alike. Per model: `load_model(name)` and a plain
transformers load of the same cached folder (`AutoTokenizer` + `AutoModelForCausalLM.from_pretrained`), each also
timed after the imports every load pays (`AFTER_IMPORTS`: the part a loader controls, and a steadier figure on a
shared machine); once: those bare imports, torch + transformers, and `PreTrainedModel` on top (transformers'
modeling code, which every model class imports: the floor of any load). Medians of wall time, with the process's
CPU time beside them; the load average (`os.getloadavg`, as `uptime` shows it) is printed before and after, since
other jobs share the machine. Run:
    .venv/bin/python benchmarks/load_time.py [--model smollm2-135m-instruct] [--runs 5]
Without --model it measures every embedded model. A model not yet converted is converted first (~60-100 s), and that
first-use time is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

AFTER_IMPORTS = ("import torch, transformers; transformers.PreTrainedModel; transformers.PreTrainedTokenizerFast; "
                 "transformers.AutoConfig")
# label: (untimed setup, timed code)
FLOORS = {
    "import torch + transformers": ("", "import torch, transformers; transformers.AutoModelForCausalLM"),
    "  + transformers' modeling code": ("", "import torch, transformers; transformers.PreTrainedModel"),
}
TIMED = ("{setup}\nimport time; t, c = time.perf_counter(), time.process_time()\n{code}\n"
         "print(time.perf_counter() - t, time.process_time() - c)")


def model_cases(identity: str) -> dict[str, tuple[str, str]]:
    """{label: (setup, code)}: `load_model(identity)` and the plain load, first in full, then after the imports."""
    loads = {
        f"load_model({identity!r})": f"import attnsteer; attnsteer.load_model({identity!r})",
        f"plain from_pretrained, {identity}": (
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "from attnsteer.models.embedded import embedded_model_dir\n"
            f"d = embedded_model_dir({identity!r}); AutoTokenizer.from_pretrained(d); "
            "AutoModelForCausalLM.from_pretrained(d)"
        ),
    }
    return {**{label: ("", code) for label, code in loads.items()},
            **{f"  after imports: {label}": (AFTER_IMPORTS, code) for label, code in loads.items()}}


def seconds_in_fresh_process(setup: str, code: str) -> tuple[float, float]:
    """(wall, CPU) seconds of `code`, run after `setup` in a new interpreter."""
    result = subprocess.run([sys.executable, "-c", TIMED.format(setup=setup, code=code)], capture_output=True,
                            text=True, check=True)
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def load_average() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    from attnsteer.models.embedded import EMBEDDED_MODELS, is_prepared, prepare_embedded_model

    parser = argparse.ArgumentParser(description="Time loading the embedded models from their cached copies.")
    parser.add_argument("--model", choices=EMBEDDED_MODELS.names(), action="append",
                        help="an embedded model (repeatable); default: every one")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    identities = args.model or EMBEDDED_MODELS.names()
    for identity in identities:
        if not is_prepared(identity):
            started = time.perf_counter()
            prepare_embedded_model(identity)
            print(f"first use of {identity} (GGUF conversion): {time.perf_counter() - started:.1f} s")
    cases = dict(FLOORS)
    for identity in identities:
        cases.update(model_cases(identity))
    print(f"before: {load_average()}")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (setup, code) in cases.items():
            times[name].append(seconds_in_fresh_process(setup, code))
    print(f"after:  {load_average()}")
    medians, width = {}, max(map(len, times))
    for name, measured in times.items():
        medians[name] = statistics.median(wall for wall, _ in measured)
        cpu = statistics.median(cpu for _, cpu in measured)
        print(f"{name:{width}s} median {medians[name]:5.2f} s (CPU {cpu:5.2f} s) over {args.runs} fresh processes")
    for identity in identities:
        load, plain = (medians[name] for name in list(model_cases(identity))[:2])
        print(f"load_time model={identity} second_load_s={load:.2f} ratio_vs_plain={load / plain:.2f}")


if __name__ == "__main__":
    main()
