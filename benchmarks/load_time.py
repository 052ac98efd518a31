"""How long `load_model()` takes for the embedded model once its safetensors copy exists.

Each case runs in a fresh process (median of --runs), imports included: `load_model()` against a
plain transformers `from_pretrained` of the same cached directory, and the bare imports (the floor
any user pays), measured in the same run. Run:
    .venv/bin/python benchmarks/load_time.py [--runs 3]
The first ever call converts the GGUF (~100 s); this script prepares that first and reports it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "import torch + transformers": "import torch, transformers; transformers.AutoModelForCausalLM",
    "attnsteer.load_model()": "import attnsteer; attnsteer.load_model()",
    "plain from_pretrained": (
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from attnsteer.models.embedded import embedded_model_dir\n"
        "d = embedded_model_dir(); AutoTokenizer.from_pretrained(d); AutoModelForCausalLM.from_pretrained(d)"
    ),
}
TIMED = "import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"


def seconds_in_fresh_process(code: str) -> float:
    result = subprocess.run([sys.executable, "-c", TIMED.format(code=code)], capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="Time loading the embedded model.")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from attnsteer.models.embedded import is_prepared, prepare_embedded_model

    if not is_prepared():
        started = time.perf_counter()
        prepare_embedded_model()
        print(f"first use (GGUF conversion): {time.perf_counter() - started:.1f} s")
    medians = {}
    for name, code in CASES.items():
        medians[name] = statistics.median(seconds_in_fresh_process(code) for _ in range(args.runs))
        print(f"{name:28s} median {medians[name]:.2f} s over {args.runs} fresh processes")
    ratio = medians["attnsteer.load_model()"] / medians["plain from_pretrained"]
    print(f"load_time second_load_s={medians['attnsteer.load_model()']:.2f} ratio_vs_plain={ratio:.2f}")


if __name__ == "__main__":
    main()
