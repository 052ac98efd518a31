"""`profile_heads`: rank every head on each task's train items, then select one multi-task head set."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import AttnsteerError
from attnsteer.heads import HeadConfig
from attnsteer.models.identity import model_identity
from attnsteer.profiling.batching import ItemBatch, group_items, make_batch
from attnsteer.profiling.items import ProfileItem, make_items
from attnsteer.profiling.methods import TaskProfile, check_method, profile_task, work_units
from attnsteer.profiling.scorer import Baseline, HeadScorer
from attnsteer.profiling.selection import (
    DEFAULT_K_GRID,
    RULES,
    SelectionError,
    choose_k,
    heads_for_count,
    select_heads,
    to_head_config,
)
from attnsteer.steering.config import SteeringConfig
from attnsteer.steering.context import model_shape
from attnsteer.tasks import Example, get_task

DEFAULT_TASKS = ("counterfact", "biasbios", "json_format", "pronoun_change")


class ProfileInputError(AttnsteerError):
    """Profiling arguments that cannot work (no items, bad counts)."""


@dataclass
class ProfileResult:
    """Everything a profiling run found: per-task scores, the selected set and how it was chosen."""

    model_id: str
    num_layers: int
    num_heads: int
    method: str
    config: SteeringConfig
    profiles: dict[str, TaskProfile]
    rule: str
    heads: HeadConfig | None  # None until selected
    k: int | None
    k_values: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    command: str = ""

    def head_file(self) -> dict[str, Any]:
        """The selected set in the shipped-default format (PASTA `heads` plus model identity and shape)."""
        return {
            "model_id": self.model_id, "num_layers": self.num_layers, "num_heads": self.num_heads,
            "heads": self.heads.as_dict(),
            "provenance": f"{self.command} (method {self.method}, select {self.rule}, k {self.k}, "
                          f"alpha {self.config.alpha}, {self.seconds:.0f} s)",
        }

    def scores_file(self) -> dict[str, Any]:
        """Full score matrices per task (layers x heads) and per-layer scores, for plots and comparisons."""
        tasks = {}
        for name, profile in self.profiles.items():
            tasks[name] = {
                "head_scores": _nan_to_none(profile.head_scores.tolist()),
                "layer_scores": None if profile.layer_scores is None else _nan_to_none(profile.layer_scores.tolist()),
                "ranking": [f"{layer}.{head}" for layer, head in profile.ranking()],
                "num_items": profile.num_items, "skipped": profile.skipped,
                "unsteered_mean_score": profile.baseline, "seconds": round(profile.seconds, 1),
            }
        return {"model_id": self.model_id, "num_layers": self.num_layers, "num_heads": self.num_heads,
                "method": self.method, "alpha": self.config.alpha, "mode": self.config.mode,
                "select": self.rule, "k": self.k, "k_objective": {str(k): v for k, v in self.k_values.items()},
                "selected": None if self.heads is None else str(self.heads),
                "seconds": round(self.seconds, 1), "command": self.command,
                "tasks": tasks}


def profile_heads(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[str] = DEFAULT_TASKS,
    n_train: int = 50,
    method: str = "exhaustive",
    select: str = "intersection",
    top_k: int | None = None,
    num_heads: int | None = None,
    select_task: str | None = None,
    k_grid: Sequence[int] = DEFAULT_K_GRID,
    n_valid: int = 20,
    alpha: float = 0.01,
    mode: str = "exclude",
    top_layers: int = 3,
    progress: bool = True,
    on_profiled: Callable[[ProfileResult], None] | None = None,
) -> ProfileResult:
    """Profile `model`'s heads on `tasks` and select a head set.

    Each task contributes `n_train` train examples (fewer if its train split is smaller), spread over
    its records (see `spread`). k is
    `top_k` if given; else the smallest k giving `num_heads` heads; else the k in `k_grid` whose set
    improves the most valid items (`n_valid` per task, mean over tasks of the share improved).
    `on_profiled(result)` runs once the scores exist, before selection (the CLI saves them there).
    """
    check_method(method)
    check_profile_arguments(tasks, n_train, select, top_k, num_heads, select_task, n_valid, top_layers)
    config = SteeringConfig(alpha=alpha, mode=mode)
    started = time.perf_counter()
    scorer = HeadScorer(model, config)
    train = {task: _items(task, "train", n_train, tokenizer) for task in tasks}
    total = sum(work_units(method, len(items), scorer.num_layers, top_layers) for items, _ in train.values())
    profiles = {}
    with tqdm(total=total, desc=f"profiling ({method})", unit="step", disable=not progress) as bar:
        for task, (items, skipped) in train.items():
            bar.set_postfix_str(task)
            profiles[task] = profile_task(scorer, task, items, method, top_layers, bar.update)
            profiles[task].skipped = skipped
    num_layers, heads_per_layer = model_shape(model)
    result = ProfileResult(model_identity(model), num_layers, heads_per_layer, method, config, profiles, select,
                           None, None, {}, time.perf_counter() - started, _command_line())
    if on_profiled is not None:
        on_profiled(result)
    rankings = {task: profile.ranking() for task, profile in profiles.items()}
    k, k_values = None, {}
    if top_k is not None:
        k, chosen = top_k, select_heads(rankings, top_k, select, select_task)
    elif num_heads is not None:
        chosen = heads_for_count(rankings, num_heads, select, select_task)
    else:
        objective = _valid_objective(scorer, tasks, n_valid, tokenizer, progress)
        k, k_values = choose_k(rankings, k_grid, select, objective, select_task)
        chosen = select_heads(rankings, k, select, select_task)
    if not chosen:
        raise SelectionError(f"the {select} of the tasks' top-{k} heads is empty; use a larger --top-k or "
                             "--select union")
    result.heads, result.k, result.k_values = to_head_config(chosen), k, k_values
    result.seconds = time.perf_counter() - started
    return result


def check_profile_arguments(tasks: Sequence[str], n_train: int, select: str, top_k: int | None, num_heads: int | None,
                     select_task: str | None, n_valid: int, top_layers: int) -> None:
    if not tasks:
        raise ProfileInputError("give at least one task to profile")
    for task in tasks:
        get_task(task)  # unknown names raise with the allowed ones
    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("top_layers", top_layers)):
        if value < 1:
            raise ProfileInputError(f"{name} must be >= 1, got {value}")
    if select not in RULES:
        raise SelectionError(f"unknown selection rule {select!r}; choose one of {', '.join(RULES)}")
    if select == "task" and select_task not in tasks:
        raise SelectionError(f"--select task needs --select-task, one of the profiled tasks {list(tasks)}")
    if top_k is not None and num_heads is not None:
        raise SelectionError("give --top-k or --num-heads, not both")
    if top_k is not None and top_k < 1:
        raise SelectionError(f"--top-k must be >= 1, got {top_k}")


def _items(
    task: str, split: str, limit: int, tokenizer: PreTrainedTokenizerBase,
) -> tuple[list[ProfileItem], list[str]]:
    examples = spread(get_task(task)().examples(split, limit=limit), limit)
    items, skipped = make_items(examples, tokenizer)
    if not items:
        raise ProfileInputError(f"task {task!r} gave no usable {split} items ({len(skipped)} skipped)")
    return items, skipped


def spread(examples: Sequence[Example], count: int) -> list[Example]:
    """`count` examples evenly spaced over `examples` (a task may give several examples per record,
    e.g. CounterFact's rewrite, paraphrases and generation prompt: this takes one per record)."""
    if len(examples) <= count:
        return list(examples)
    return [examples[index * len(examples) // count] for index in range(count)]


def _valid_objective(scorer: HeadScorer, tasks: Sequence[str], n_valid: int, tokenizer: PreTrainedTokenizerBase,
                     progress: bool):
    """objective(heads) = mean over tasks of the share of valid items whose score the heads improve."""
    valid: dict[str, list[tuple[ItemBatch, Baseline]]] = {}
    for task in tqdm(tasks, desc="valid baselines", disable=not progress):
        items, _ = _items(task, "valid", n_valid, tokenizer)
        batches = [make_batch(group) for group in group_items(items, variants=1, max_columns=scorer.window)]
        valid[task] = [(batch, scorer.baseline(batch)) for batch in batches]

    def objective(heads: set[tuple[int, int]]) -> float:
        weights: dict[int, torch.Tensor] = {}
        for layer, head in heads:
            weights.setdefault(layer, torch.zeros(1, scorer.num_heads))[0, head] = 1.0
        shares = []
        for pairs in valid.values():
            improved = [scorer.score_heads(batch, base, weights)[:, 0] > base.scores for batch, base in pairs]
            shares.append(float(torch.cat(improved).float().mean()))
        return sum(shares) / len(shares)

    return objective


def _nan_to_none(values: Any) -> Any:
    if isinstance(values, list):
        return [_nan_to_none(value) for value in values]
    return None if values != values else round(values, 5)


def _command_line() -> str:
    argv = [arg for arg in sys.argv if arg]
    program = argv[0].rsplit("/", 1)[-1] if argv else "python"
    return shlex.join([program, *argv[1:]]) if program == "attnsteer" else "attnsteer.profile_heads(...)"
