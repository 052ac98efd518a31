"""Markdown table of the IFEval runs written by scripts/run_ifeval_lm_eval.sh (lm-eval's results JSON files).

usage: python scripts/ifeval_lm_eval_table.py docs/results/ifeval_lm_eval
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

RUNS = {"zero_shot": "zero-shot (plain prompt)", "steered": "PASTA, instruction sentences emphasised",
        "marked": "instruction sentences marked `*...*`, not steered",
        "instaboost": "InstABoost, instruction sentences emphasised",
        "spotlight_head": "Spotlight per head, instruction sentences emphasised",
        "spotlight_layer": "Spotlight per layer, instruction sentences emphasised"}
METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def latest_results(folder: Path) -> dict:
    files = sorted(folder.glob("*/results_*.json"))
    if not files:
        raise SystemExit(f"no lm-eval results under {folder}")
    return json.loads(files[-1].read_text())


def strict_outcomes(folder: Path) -> dict[int, tuple[bool, list[bool]]]:
    """doc_id -> (prompt passes, each instruction passes), strict, from lm-eval's samples file."""
    files = sorted(folder.glob("*/samples_ifeval_local_*.jsonl"))
    samples = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()] if files else []
    return {s["doc_id"]: (bool(s["prompt_level_strict_acc"]), list(s["inst_level_strict_acc"])) for s in samples}


def paired_line(name: str, run: dict, base: dict) -> str:
    """Prompts / instructions that pass in `run` and not in zero-shot, and the reverse (same prompts)."""
    shared = sorted(set(run) & set(base))
    gained = sum(run[d][0] and not base[d][0] for d in shared)
    lost = sum(base[d][0] and not run[d][0] for d in shared)
    pairs = [(r, b) for d in shared for r, b in zip(run[d][1], base[d][1], strict=True)]
    inst_gained = sum(r and not b for r, b in pairs)
    inst_lost = sum(b and not r for r, b in pairs)
    return (f"- {name} vs zero-shot, same {len(shared)} prompts (strict): prompts +{gained} / -{lost} "
            f"(two-sided sign test p = {sign_test(gained, lost):.3g}), "
            f"instructions +{inst_gained} / -{inst_lost} of {len(pairs)}")


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided sign test: how likely a split at least this uneven is when each changed prompt
    is equally likely to be gained or lost (ties, prompts unchanged, carry no information)."""
    changed = gained + lost
    if changed == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(min(gained, lost) + 1)) / 2**changed
    return min(1.0, 2 * tail)


def emphasis_line(log: Path) -> str:
    found = re.findall(r"attnsteer: emphasis rule .*", log.read_text()) if log.exists() else []
    return found[-1].removeprefix("attnsteer: ") if found else ""


def prompt_format(results: dict) -> str:
    """A line naming the chat template and system instruction lm-eval applied (empty for plain prompts)."""
    if not results.get("chat_template"):
        return ""
    system = results.get("system_instruction")
    return (f"Prompts through the model's chat template (sha256 {str(results.get('chat_template_sha'))[:12]}), "
            f"system instruction {system!r}, few-shot as multi-turn: {results.get('fewshot_as_multiturn')}.")


def main(out: Path) -> None:
    print("| run | model_args | n | " + " | ".join(METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    notes, formats = [], set()
    for name, title in RUNS.items():
        if not (out / name).exists():
            continue
        results = latest_results(out / name)
        formats.add(prompt_format(results))
        task = results["results"]["ifeval_local"]
        count = results["n-samples"]["ifeval_local"]["effective"]
        cells = [f"{100 * task[f'{metric},none']:.1f}" for metric in METRICS]
        print(f"| {title} | `{results['config']['model_args']}` | {count} | " + " | ".join(cells) + " |")
        notes.append(f"- {name}: {emphasis_line(out / f'{name}.log')}")
    print()
    print("Accuracies in %. Emphasis per run (from the run's log):")
    print("\n".join(notes))
    for line in sorted(line for line in formats if line):
        print(line)
    base = strict_outcomes(out / "zero_shot")
    paired = [paired_line(name, strict_outcomes(out / name), base) for name in RUNS
              if name != "zero_shot" and (out / name).exists() and base]
    if paired:
        print()
        print("Paired changes (a prompt passes only when all its instructions do):")
        print("\n".join(paired))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/ifeval_lm_eval"))
