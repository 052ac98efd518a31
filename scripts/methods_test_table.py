"""Every steering method on the TEST split of the paper's Table 1 tasks, each at the strength it won on the valid
split (docs/results.md, "Steering methods on the test split"). For one model:

1. choose: each method's candidate with the best valid average, read from
   `docs/results/methods/valid_<model>.json` (`scripts/choose_steering_strength.py`); SPA's strengths are tried
   on the same valid records here first (`valid_spa_<model>.json`, written once, reused when present);
2. test: the chosen candidates on the first LIMIT test records per task, plus the prompting baselines and PASTA
   with the model's shipped heads; `--baseline FILE...` reuses those from earlier `attnsteer eval --json` runs
   of the same split, limit and template instead of running them again (checked);
3. writes `test_<model>.<task>.json` per task (`--tasks`: processes side by side), then `--merge` writes
   `test_<model>.json` (every prediction) and `test_<model>.md` (Table 1, its average, and the average
   without BiasBios, where SPA is not run); `--tasks squad` (the oracle sentence emphasised, LIMIT paragraphs)
   gets its own table, `test_<model>.squad.md`.

Run: scripts/methods_test_table.sh (both models, the commands below per model and task)
     .venv/bin/python scripts/methods_test_table.py --model smollm2-135m-instruct --limit 30 --tasks counterfact \
       --baseline docs/results/eval_smollm2/counterfact.json
     .venv/bin/python scripts/methods_test_table.py --model smollm2-135m-instruct --limit 30 --merge
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnsteer import Steerer, load_model
from attnsteer.chat import resolve_chat
from attnsteer.evaluation import EvalResult, evaluate, results_markdown, results_table, write_json
from attnsteer.evaluation.report import average_primary

TASKS = ("counterfact", "biasbios", "json_format", "pronoun_change")
BASELINES = ("zero-shot", "marked-star", "marked-quote", "few-shot", "pasta")
SPA_STRENGTHS = (1.4, 3.0)  # the package's default, and the stronger setting measured while planning
SPA_VALID_TASKS = ("counterfact", "json_format", "pronoun_change")  # see the docstring
SPA_TEST_TASKS = SPA_VALID_TASKS  # SPA's BiasBios scoring (~100 s per bio here) is left out of the test table too
EMBEDDED_DEFAULT = "gemma-3-270m-q4_k_m"
# evaluate() keyword arguments per steering setting key
PARAMETERS = {"boost": "boost", "target": "target", "granularity": "granularity", "strength": "spa_strength"}


def family(steering: dict[str, Any]) -> str:
    """The method a candidate belongs to: spotlight's two granularities count as two methods."""
    if steering["method"] == "spotlight":
        return f"spotlight-{steering['granularity']}"
    return steering["method"]


def candidate_averages(runs: list[EvalResult]) -> dict[str, tuple[dict[str, Any], float]]:
    """{method family: (its best candidate's steering settings, valid average)}: the average of the primary
    metrics of the tasks it ran (all four; SPA's candidates the three of SPA_VALID_TASKS)."""
    by_setting: dict[str, list[EvalResult]] = {}
    for run in runs:
        steering = run.config.get("steering")
        if steering:
            by_setting.setdefault(json.dumps(steering, sort_keys=True), []).append(run)
    best: dict[str, tuple[dict[str, Any], float]] = {}
    for key, group in by_setting.items():
        average = average_primary({run.task: run.metrics for run in group})
        steering = json.loads(key)
        if average is not None and (family(steering) not in best or average > best[family(steering)][1]):
            best[family(steering)] = (steering, average)
    return best


def load_runs(path: Path) -> list[EvalResult]:
    return [EvalResult(**run) for run in json.loads(path.read_text())["runs"]]


def spa_valid_runs(model: Any, tokenizer: Any, steerer: Steerer, path: Path, options: dict[str, Any]) -> list:
    """SPA's candidate strengths on the valid records (written to `path`; read from it when present)."""
    if path.exists():
        return load_runs(path)
    runs = [evaluate(model, tokenizer, task, "spa", steerer=steerer, spa_strength=strength, **options)
            for strength in SPA_STRENGTHS for task in SPA_VALID_TASKS]
    write_json(runs, path)
    return runs


def reused_baselines(paths: list[str], split: str, limit: int, chat: bool, pasta: dict[str, Any]) -> list[EvalResult]:
    """The baseline runs of earlier eval JSON files, refused unless their split, limit and template match; a
    `pasta` run is kept only when its heads, alpha and mode are `pasta`'s (the model's shipped setting)."""
    runs = [run for path in paths for run in load_runs(Path(path))
            if run.method in BASELINES and (run.method != "pasta" or same_pasta(run, pasta))]
    for run in runs:
        config = run.config
        if (config.get("split"), config.get("limit"), bool(config.get("chat"))) != (split, limit, chat):
            raise SystemExit(f"{run.task}/{run.method} in --baseline was run with split {config.get('split')}, "
                             f"limit {config.get('limit')}, chat {config.get('chat')}; this table needs "
                             f"{split}, {limit}, {chat}")
    return runs


def same_pasta(run: EvalResult, pasta: dict[str, Any]) -> bool:
    """True when `run` steered with `pasta`'s heads, alpha and mode (older runs keep them at the config's top)."""
    steering = run.config.get("steering") or run.config
    return all(str(steering.get(key)) == str(pasta[key]) for key in ("heads", "alpha", "mode"))


def run_task(model: Any, tokenizer: Any, steerer: Steerer, task: str, chosen: dict, baselines: list[EvalResult],
             options: dict[str, Any]) -> list[EvalResult]:
    """One task's test runs: the baselines not in `baselines`, then each chosen candidate (SPA: SPA_TEST_TASKS)."""
    runs = [run for run in baselines if run.task == task]
    have = {run.method for run in runs}
    runs += [evaluate(model, tokenizer, task, method, steerer=steerer, **options) for method in BASELINES
             if method not in have]
    for method, (steering, _) in sorted(chosen.items()):
        if method == "pasta" or (method == "spa" and task not in SPA_TEST_TASKS):
            continue  # pasta: the shipped heads, a baseline row above
        strengths = {PARAMETERS[key]: value for key, value in steering.items() if key in PARAMETERS}
        result = evaluate(model, tokenizer, task, steering["method"], steerer=steerer, **strengths, **options)
        label = method + " (" + ", ".join(f"{k} {v}" for k, v in strengths.items() if k != "granularity") + ")"
        runs.append(replace(result, method=label))
        print(f"{task} {label}: {result.metrics} ({result.seconds:.0f} s)", flush=True)
    return runs


def merged_table(runs: list[EvalResult], caption: str) -> str:
    """Table 1 of `runs` with one more column: the average without BiasBios (where SPA did not run)."""
    header, rows = results_table(runs)
    for row in rows:
        if {run.task for run in runs if run.method == row[0]} != set(TASKS):
            row[-1] = "-"  # not an average over the four tasks
        by_task = {run.task: run.metrics for run in runs if run.method == row[0] and run.task != "biasbios"}
        average = average_primary(by_task)
        row.append("-" if average is None else f"{average:.2f}")
    return results_markdown([*header, "average without biasbios"], rows, caption)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an embedded model's name (default: Gemma 3 270M)")
    parser.add_argument("--limit", type=int, default=30, help="test records per task")
    parser.add_argument("--valid-limit", type=int, default=5, help="valid records per task for SPA's choice")
    parser.add_argument("--baseline", nargs="*", default=[], help="earlier eval JSON files holding the baselines")
    parser.add_argument("--tasks", default=",".join(TASKS), help="run these tasks (one process per task can run "
                        "side by side; each writes test_<model>.<task>.json); none: only choose on valid")
    parser.add_argument("--merge", action="store_true", help="merge the four tasks' files into the table")
    parser.add_argument("--without-spa", action="store_true", help="leave SPA out (its valid choice and its rows)")
    parser.add_argument("--out", default="docs/results/methods")
    args = parser.parse_args()
    name = args.model or EMBEDDED_DEFAULT
    out = Path(args.out)
    command = f"python scripts/methods_test_table.py --model {name} --limit {args.limit}"
    if args.merge:
        runs = [run for task in TASKS for run in load_runs(out / f"test_{name}.{task}.json")]
        chat = bool(runs[0].config.get("chat"))
        caption = (f"Command: `{command}` (test split, first {args.limit} records per task"
                   f"{', chat template' if chat else ''}; SPA not on BiasBios)")
        table = merged_table(runs, caption)
        write_json(runs, out / f"test_{name}.json")
        (out / f"test_{name}.md").write_text(table)
        print(table)
        extra = out / f"test_{name}.squad.json"  # SQuAD (--tasks squad): its own table, its own metrics
        if extra.exists():
            squad_runs = load_runs(extra)
            limit = squad_runs[0].config.get("limit")
            header, rows = results_table(squad_runs)
            squad = results_markdown(header, rows, f"Command: `python scripts/methods_test_table.py --model {name} "
                                     f"--limit {limit} --tasks squad` (test split, first {limit} paragraphs; "
                                     "strengths chosen on the Table 1 tasks' valid split)")
            (out / f"test_{name}.squad.md").write_text(squad)
            print(squad)
        return
    model, tokenizer = load_model(args.model)
    chat = resolve_chat("auto", tokenizer)
    steerer = Steerer(model, tokenizer, markup=None)
    common = {"chat": chat, "progress": False, "batch_size": 16}
    valid = load_runs(out / f"valid_{name}.json")
    if not args.without_spa:
        valid += spa_valid_runs(model, tokenizer, steerer, out / f"valid_spa_{name}.json",
                                {"split": "valid", "limit": args.valid_limit, **common})
    chosen = candidate_averages(valid)
    for method, (steering, average) in sorted(chosen.items()):
        print(f"chosen on valid: {method} {steering} (valid average {average:.2f})", flush=True)
    baselines = reused_baselines(args.baseline, "test", args.limit, chat, steerer.method.to_dict())
    for task in filter(None, args.tasks.split(",")):
        runs = run_task(model, tokenizer, steerer, task, chosen, baselines,
                        {"split": "test", "limit": args.limit, **common})
        write_json(runs, out / f"test_{name}.{task}.json", {"chosen_on_valid": {m: s for m, (s, _) in chosen.items()}})


if __name__ == "__main__":
    main()
