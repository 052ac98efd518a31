"""`evaluate`: run one task under one method and compute the task's metrics.

Light to import (no torch, no transformers at module level): the CLI calls `check_evaluation` before
it loads a model, so bad input is reported at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from attnsteer.chat import ChatPrompt, marked_of
from attnsteer.context.config import LLMSteerConfig, split_context
from attnsteer.distributed import init_from_env, shard, sharded_map, world
from attnsteer.evaluation.methods import (
    check_parameters_used,
    continuation,
    expand_methods,
    get_method,
    pick_demonstrations,
    render,
)
from attnsteer.evaluation.runs import Runs, method_runs, method_steerer
from attnsteer.heads.head_config import HeadSpec
from attnsteer.spans import MarkedText
from attnsteer.tasks import Example, Task, get_task

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from attnsteer.steerer import Steerer

# tqdm's own postfix comes with a leading ", ": it sits after the times, as in tqdm's default layout.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


@dataclass
class EvalResult:
    """One (task, method) run: aggregated metrics and every per-example prediction."""

    task: str
    method: str
    metrics: dict[str, float]
    predictions: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def examples_per_second(self) -> float:
        return len(self.predictions) / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: str | Task,
    method: str,
    *,
    heads: HeadSpec | None = None,
    alpha: float | None = None,
    mode: str | None = None,
    boost: float | None = None,
    target: float | None = None,
    granularity: str | None = None,
    spa_strength: float | None = None,
    split: str = "test",
    limit: int | None = None,
    k_shot: int = 2,
    seed: int = 0,
    batch_size: int = 8,
    data_file: str | None = None,
    progress: bool = True,
    steerer: Steerer | None = None,
    chat: bool = False,
    llmsteer: LLMSteerConfig | None = None,
) -> EvalResult:
    """Evaluate `method` (see `method_names()`) on `task` (a registered name or a Task).

    Scoring examples share one prompt encoding across their candidates; generation examples run
    in left-padded batches of `batch_size`, greedy. Demonstrations for the few-shot methods come
    from the task's train split (k_shot of them, seeded). chat: each prompt goes through the
    tokenizer's chat template (`resolve_chat` turns "auto" / "on" / "off" into this), the demonstrations
    as earlier user / assistant exchanges and the emphasis on the same text inside the last user message.
    llmsteer: how the llmsteer method picks its tokens (default `LLMSteerConfig()`: k = 10% of the context).

    Strengths (None: the steerer's own when it already runs that steering method, else the method's default):
    heads, alpha, mode for pasta, few-shot+pasta and the context methods; boost for instaboost; target and
    granularity for spotlight; spa_strength for spa (`evaluation.spa`). A parameter the method does not use is
    ignored. steerer: shares its model and tokenizer (and gives the strengths not given here).

    Under torchrun (`attnsteer.distributed`) each rank runs its shard of `work_units` and every rank returns the
    result one process would (the predictions in example order, the metrics from them); rank 0 alone shows progress.
    """
    (method,) = expand_methods([method])
    spec = get_method(method)
    task_object = get_task(task)(data_file) if isinstance(task, str) else task
    examples = task_object.examples(split, limit)  # type: ignore[arg-type]
    check_method_fits(task_object, method, examples)
    if steerer is None:
        from attnsteer.steerer import Steerer

        steerer = Steerer(model, tokenizer, markup=None, heads=heads)  # no heads: the model's default method
    strengths = {"heads": heads, "alpha": alpha, "mode": mode, "boost": boost, "target": target,
                 "granularity": granularity}
    runs = method_runs(spec, method_steerer(steerer, spec, strengths), chat, spa_strength)
    pool = task_object.examples("train") if spec.demonstrations else []
    demos = {kind: pick_demonstrations(pool, k_shot, seed, kind) for kind in ("score", "generate")}
    started = time.perf_counter()
    init_from_env(runs.steerer.model.device)  # under torchrun: the process group (a no-op in one process)
    units = work_units(examples, method, runs.batch_size or batch_size)
    rank, size = world()
    bar = EvalProgress(sum(map(len, shard(units, rank, size))), f"{task_object.name} / {method}",
                       enabled=progress and rank == 0)  # rank 0's bar counts rank 0's share
    run = _UnitRun(runs, task_object, method, demos, bar, chat, llmsteer)
    try:
        predictions = [prediction for unit in sharded_map(run, units) for prediction in unit]
    finally:
        bar.close()  # an error is then printed on a line of its own
    metrics = task_object.aggregate([prediction["metrics"] for prediction in predictions])
    config = {"split": split, "limit": limit, "k_shot": k_shot, "seed": seed, "data_file": data_file, "chat": chat,
              "steering": runs.to_dict()}
    if method == "llmsteer":
        config["llmsteer_top_fraction"] = (llmsteer or LLMSteerConfig()).top_fraction
    return EvalResult(task_object.name, method, metrics, predictions, config, time.perf_counter() - started)


def check_evaluation(tasks: Sequence[str], methods: Sequence[str], *, split: str = "test", limit: int | None = None,
                     data_file: str | None = None, parameters: dict[str, Any] | None = None,
                     spell: Callable[[str], str] = str) -> None:
    """Raise what `evaluate` would raise on this input, without a model: an unknown task or method, an
    unreadable or malformed data file, a bad split or limit, a context method on a task that marks no context,
    spa without its package; and a parameter in `parameters` (None: not given) that none of the methods uses
    (`spell`: how the message names a parameter, e.g. the CLI's "--boost")."""
    methods = expand_methods(methods)
    check_parameters_used(methods, parameters or {}, spell)
    if any(get_method(method).anchoring for method in methods):
        from attnsteer.evaluation.spa import require_anchoring

        require_anchoring()
    for name in tasks:
        task = get_task(name)(data_file)
        examples = task.examples(split, limit)  # type: ignore[arg-type]
        for method in methods:
            check_method_fits(task, method, examples)


def check_method_fits(task: Task, method: str, examples: Sequence[Example]) -> None:
    """A method that reads a context (autopasta, llmsteer) needs examples that mark their context
    (`context.config.split_context` says which and raises); the other methods fit every task."""
    if get_method(method).reads_context:
        for example in examples:
            split_context(task, method, example)


class EvalProgress:
    """The progress bar of one evaluation run, counted in examples; generation moves it token by token.

    A batch of n generation examples with a budget of T new tokens moves the bar n/T per decoding step
    (the postfix says "generating n: token t/T") and to n in all when the batch ends, even when every
    row stopped early: the bar follows the generation work instead of waiting for whole batches.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.total, self.done = total, 0
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False, bar_format=BAR_FORMAT,
                        postfix=f"0/{total} examples")

    def finished(self, count: int = 1) -> None:
        """`count` more examples are done."""
        self.done += count
        self._move(0.0)

    def streamer(self, count: int, max_new_tokens: int) -> TokenProgress:
        """A `streamer=` for `generate` on the next `count` examples, with this token budget."""
        return TokenProgress(self, count, max_new_tokens)

    def generating(self, count: int, step: int, max_new_tokens: int) -> None:
        """Decoding step `step` (1-based) of `max_new_tokens` on the next `count` examples."""
        step = min(step, max_new_tokens)
        self._move(count * step / max_new_tokens, f"generating {count}: token {step}/{max_new_tokens}")

    def close(self) -> None:
        self.bar.close()

    def _move(self, partial: float, doing: str = "") -> None:
        """Put the bar at `done + partial` examples, the postfix saying how many are done and what runs."""
        self.bar.set_postfix_str(f"{self.done}/{self.total} examples" + (f", {doing}" if doing else ""),
                                 refresh=False)
        self.bar.update(self.done + partial - self.bar.n)


class TokenProgress:
    """A transformers streamer (`put`, `end`) that moves an `EvalProgress` at each decoding step.

    generate's first `put` is the prompt ids ([batch, prompt tokens]); each later one is the step's new
    tokens ([batch]), so the number of puts after the first is the number of tokens generated per row.
    """

    def __init__(self, progress: EvalProgress, count: int, max_new_tokens: int) -> None:
        self.progress, self.count, self.max_new_tokens = progress, count, max_new_tokens
        self.steps = -1

    def put(self, value: Any) -> None:
        self.steps += 1
        if self.steps:
            self.progress.generating(self.count, self.steps, self.max_new_tokens)

    def end(self) -> None:
        """Nothing to flush: the runner marks the batch's examples done when `generate` returns."""


def _prediction(example: Example, prompt: MarkedText | ChatPrompt) -> dict[str, Any]:
    """The start of a prediction record: the text the model read and the emphasised char spans in it."""
    marked = marked_of(prompt)
    return {"id": example.id, "prompt": marked.text, "emphasis": [(span.start, span.end) for span in marked.spans]}


def work_units(examples: Sequence[Example], method: str, batch_size: int) -> list[list[Example]]:
    """The examples as `evaluate` runs them, in independent units listed in the order of their predictions:
    each score example alone, then the generate examples in batches of `batch_size`; a context method's examples
    one by one, except llmsteer's, one unit (its ContextStore shares prepared contexts across examples and its
    stats are part of the result). Under torchrun the ranks share the units out (`distributed.sharded_map`): a
    generation batch is the batch a one-process run forms, so it computes the same on any rank."""
    if method == "llmsteer":
        return [list(examples)] if examples else []
    if get_method(method).reads_context:
        return [[example] for example in examples]
    generating = [example for example in examples if example.kind == "generate"]
    return ([[example] for example in examples if example.kind == "score"]
            + [generating[start : start + batch_size] for start in range(0, len(generating), batch_size)])


@dataclass(frozen=True)
class _UnitRun:
    """Runs one work unit (`work_units`) of an evaluation: its predictions, in the unit's order."""

    runs: Runs
    task: Task
    method: str
    demos: dict[str, list[Example]]
    bar: EvalProgress
    chat: bool
    llmsteer: LLMSteerConfig | None

    def __call__(self, unit: Sequence[Example]) -> list[dict[str, Any]]:
        if get_method(self.method).reads_context:
            from attnsteer.context.evaluation import run_context_method

            return run_context_method(self.runs.steerer, self.task, self.method, unit, self.bar, self.chat,
                                      self.llmsteer)
        if unit[0].kind == "score":
            return _run_scoring(self.runs, self.task, self.method, unit, self.demos["score"], self.bar, self.chat)
        return _run_generation(self.runs, self.task, self.method, unit, self.demos["generate"], len(unit), self.bar,
                               self.chat)


def _run_scoring(runs: Runs, task: Task, method: str, examples: Sequence[Example],
                 demos: Sequence[Example], bar: EvalProgress, chat: bool) -> list[dict[str, Any]]:
    predictions = []
    for example in (e for e in examples if e.kind == "score"):
        rendered = render(method, example, demos)
        prompt = rendered.for_model(runs.steerer.tokenizer, chat)
        candidates = [continuation(candidate, chat) for candidate in example.candidates]
        scores = runs.score(rendered, prompt, candidates)
        predictions.append({**_prediction(example, prompt), "scores": scores,
                            "metrics": task.score_metrics(example, scores)})
        bar.finished()
    return predictions


def _run_generation(runs: Runs, task: Task, method: str, examples: Sequence[Example],
                    demos: Sequence[Example], batch_size: int, bar: EvalProgress, chat: bool) -> list[dict[str, Any]]:
    predictions = []
    generating = [e for e in examples if e.kind == "generate"]
    for start in range(0, len(generating), batch_size):
        batch = generating[start : start + batch_size]
        rendered = [render(method, example, demos) for example in batch]
        prompts = [r.for_model(runs.steerer.tokenizer, chat) for r in rendered]
        budget = max(e.max_new_tokens for e in batch)
        outputs = runs.generate(rendered, prompts, budget, bar.streamer(len(batch), budget))
        for example, prompt, output in zip(batch, prompts, outputs, strict=True):
            predictions.append({**_prediction(example, prompt), "output": output,
                                "metrics": task.generation_metrics(example, output)})
        bar.finished(len(batch))
    return predictions
