"""`profile_heads`: rank every head on each task's train items, then select one multi-task head set."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.distributed import init_from_env, shard, sharded_map, world
from attnsteer.heads import HeadConfig
from attnsteer.model_info import model_identity, model_shape
from attnsteer.profiling.batching import ItemBatch, group_items, make_batch
from attnsteer.profiling.config import ProfileConfig, ProfileInputError
from attnsteer.profiling.items import ProfileItem, make_items
from attnsteer.profiling.methods import TaskProfile, profile_task, work_units
from attnsteer.profiling.scorer import Baseline, HeadScorer
from attnsteer.profiling.selection import Head, SelectionError, choose_k, heads_for_count, select_heads, to_head_config
from attnsteer.steering.bias import head_weights
from attnsteer.steering.config import SteeringConfig
from attnsteer.tasks import Example, get_task


@dataclass
class ProfileResult:
    """Everything a profiling run found: per-task scores, the selected set and how it was chosen.

    command: how the run was started (the CLI's command line), recorded in the head file.
    """

    model_id: str
    num_layers: int
    num_heads: int
    config: ProfileConfig
    profiles: dict[str, TaskProfile]
    heads: HeadConfig | None = None  # None until selected
    k: int | None = None
    k_values: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    command: str = ""

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def rule(self) -> str:
        return self.config.select

    @property
    def steering(self) -> SteeringConfig:
        return self.config.steering

    def head_file(self) -> dict[str, Any]:
        """The selected set in the shipped-default format (PASTA `heads` plus model identity and shape)."""
        command = self.command or "attnsteer.profile_heads(...)"
        return {
            "model_id": self.model_id, "num_layers": self.num_layers, "num_heads": self.num_heads,
            "heads": self.heads.as_dict(),
            "provenance": f"{command} (method {self.method}, select {self.rule}, k {self.k}, "
                          f"alpha {self.steering.alpha}, {self.seconds:.0f} s)",
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
                "method": self.method, "alpha": self.steering.alpha, "mode": self.steering.mode,
                "select": self.rule, "k": self.k, "k_objective": {str(k): v for k, v in self.k_values.items()},
                "selected": None if self.heads is None else str(self.heads),
                "seconds": round(self.seconds, 1), "command": self.command, "config": self.config.to_dict(),
                "tasks": tasks}


def profile_heads(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: ProfileConfig = ProfileConfig(),  # noqa: B008  (frozen: one shared default is safe)
    *,
    progress: bool = True,
    on_profiled: Callable[[ProfileResult], None] | None = None,
    command: str = "",
    profiles: dict[str, TaskProfile] | None = None,
) -> ProfileResult:
    """Profile `model`'s heads on `config.tasks` and select a head set (see `ProfileConfig`).

    Each task contributes `n_train` train examples, spread over its records (see `spread`).
    `on_profiled(result)` runs once the scores exist, before selection (the CLI saves them there).
    command: how the run was started (e.g. the CLI's command line), kept as provenance in the head file.
    profiles: scores from an earlier run (`read_profiles`); only the selection runs again.
    Under torchrun (`attnsteer.distributed`) the ranks share the scoring out and every rank returns the result one
    process would (rank 0 alone shows progress; `on_profiled` runs on every rank).
    """
    started = time.perf_counter()
    init_from_env(model.device)  # under torchrun: the process group (a no-op in one process)
    scorer = HeadScorer(model, config.steering)
    if profiles is None:
        profiles = _profile_tasks(scorer, tokenizer, config, progress)
    elif sorted(profiles) != sorted(config.tasks):
        raise ProfileInputError(f"the scores hold tasks {sorted(profiles)}, the run asks for {sorted(config.tasks)}")
    num_layers, heads_per_layer = model_shape(model)
    result = ProfileResult(model_identity(model), num_layers, heads_per_layer, config, profiles,
                           seconds=time.perf_counter() - started, command=command)
    if on_profiled is not None:
        on_profiled(result)
    chosen, result.k, result.k_values = _select(scorer, tokenizer, config, profiles, progress)
    result.heads = to_head_config(chosen)
    result.seconds = time.perf_counter() - started
    return result


def read_profiles(scores: dict[str, Any], model: PreTrainedModel) -> tuple[str, dict[str, TaskProfile]]:
    """(method, task profiles) from a scores file written by `attnsteer profile --scores` for `model`."""
    identity, shape = model_identity(model), model_shape(model)
    written = (scores.get("model_id"), scores.get("num_layers"), scores.get("num_heads"))
    if written != (identity, *shape):
        raise ProfileInputError(f"the scores were written for model {written[0]!r} ({written[1]} x {written[2]} "
                                f"heads), not for {identity!r} ({shape[0]} x {shape[1]})")
    method = scores["method"]
    profiles = {}
    for task, entry in scores["tasks"].items():
        head_scores = torch.tensor(_none_to_nan(entry["head_scores"]), dtype=torch.float32)
        layers = entry.get("layer_scores")
        profiles[task] = TaskProfile(task, method, head_scores,
                                     None if layers is None else torch.tensor(_none_to_nan(layers)),
                                     entry["num_items"], list(entry.get("skipped", [])),
                                     entry.get("unsteered_mean_score", float("nan")), entry.get("seconds", 0.0))
    return method, profiles


def _profile_tasks(scorer: HeadScorer, tokenizer: PreTrainedTokenizerBase, config: ProfileConfig,
                   progress: bool) -> dict[str, TaskProfile]:
    """Every task's head scores with `config.method`, under one progress bar."""
    train = {task: _items(task, "train", config.n_train, tokenizer, config.chat) for task in config.tasks}
    total = sum(work_units(config.method, len(items), scorer.num_layers, config.top_layers)
                for items, _ in train.values())
    rank, size = world()
    profiles, done = {}, 0
    shown = progress and rank == 0
    with tqdm(total=total, desc=f"profiling ({config.method})", unit="step", disable=not shown) as bar:
        for task, (items, skipped) in train.items():
            bar.set_postfix_str(task)
            done += work_units(config.method, len(items), scorer.num_layers, config.top_layers)

            def step(count: int, done: int = done) -> None:  # rank 0's steps stand for every rank's
                bar.update(min(count * size, done - bar.n))

            profiles[task] = profile_task(scorer, task, items, config.method, config.top_layers, step)
            profiles[task].skipped = skipped
            bar.update(done - bar.n)
    return profiles


def _select(scorer: HeadScorer, tokenizer: PreTrainedTokenizerBase, config: ProfileConfig,
            profiles: dict[str, TaskProfile], progress: bool) -> tuple[set[Head], int | None, dict[int, float]]:
    """(chosen heads, k or None, {k: valid objective}): k is `top_k`, or follows from `num_heads`, or is
    the k in `k_grid` whose set improves the most valid items."""
    rankings = {task: profile.ranking() for task, profile in profiles.items()}
    rule, task = config.select, config.select_task
    k, k_values = None, {}
    if config.top_k is not None:
        k, chosen = config.top_k, select_heads(rankings, config.top_k, rule, task)
    elif config.num_heads is not None:
        chosen = heads_for_count(rankings, config.num_heads, rule, task)
    else:
        objective = _valid_objective(scorer, config.tasks, config.n_valid, tokenizer, config.chat, progress)
        k, k_values = choose_k(rankings, config.k_grid, rule, objective, task)
        chosen = select_heads(rankings, k, rule, task)
    if not chosen:
        raise SelectionError(f"the {rule} of the tasks' top-{k} heads is empty; use a larger --top-k or "
                             "--select union")
    return chosen, k, k_values


def _items(
    task: str, split: str, limit: int, tokenizer: PreTrainedTokenizerBase, chat: bool,
) -> tuple[list[ProfileItem], list[str]]:
    examples = spread(get_task(task)().examples(split, limit=limit), limit)
    items, skipped = make_items(examples, tokenizer, chat)
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
                     chat: bool, progress: bool):
    """objective(heads) = mean over tasks of the share of valid items whose score the heads improve.

    Under torchrun each rank runs the baselines of its shard of the (task, batch) pairs once, and each call
    scores that shard (`distributed.sharded_map`); the shares come from the gathered flags, in task order.
    """
    batches: list[tuple[str, ItemBatch]] = []
    for task in tasks:
        items, _ = _items(task, "valid", n_valid, tokenizer, chat)
        batches += [(task, make_batch(group)) for group in group_items(items, variants=1, max_columns=scorer.window)]
    rank, size = world()
    units = list(range(len(batches)))
    baselines: dict[int, Baseline] = {index: scorer.baseline(batches[index][1]) for index in tqdm(
        shard(units, rank, size), desc="valid baselines", disable=not progress or rank != 0)}

    def objective(heads: set[tuple[int, int]]) -> float:
        weights = head_weights(HeadConfig.from_pairs(heads), scorer.num_heads)

        def improved(index: int) -> tuple[str, torch.Tensor]:
            (task, batch), base = batches[index], baselines[index]
            return task, (scorer.score_heads(batch, base, weights)[:, 0] > base.scores).cpu()

        by_task: dict[str, list[torch.Tensor]] = {}
        for task, flags in sharded_map(improved, units):
            by_task.setdefault(task, []).append(flags)
        shares = [float(torch.cat(flags).float().mean()) for flags in by_task.values()]
        return sum(shares) / len(shares)

    return objective


def _none_to_nan(values: Any) -> Any:
    if isinstance(values, list):
        return [_none_to_nan(value) for value in values]
    return float("nan") if values is None else values


def _nan_to_none(values: Any) -> Any:
    if isinstance(values, list):
        return [_nan_to_none(value) for value in values]
    return None if values != values else round(values, 5)
