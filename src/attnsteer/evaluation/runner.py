"""`evaluate`: run one task under one method and compute the task's metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.evaluation.methods import (
    CONTEXT_METHODS,
    RenderedPrompt,
    expand_methods,
    pick_demonstrations,
    render,
)
from attnsteer.heads.head_config import HeadSpec
from attnsteer.steerer import Steerer
from attnsteer.tasks import Example, Task, get_task


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
    alpha: float = 0.01,
    split: str = "test",
    limit: int | None = None,
    k_shot: int = 2,
    seed: int = 0,
    batch_size: int = 8,
    data_file: str | None = None,
    progress: bool = True,
    steerer: Steerer | None = None,
) -> EvalResult:
    """Evaluate `method` (see methods.METHODS) on `task` (a registered name or a Task).

    Scoring examples share one prompt encoding across their candidates; generation examples run
    in left-padded batches of `batch_size`, greedy. Demonstrations for the few-shot methods come
    from the task's train split (k_shot of them, seeded).
    """
    (method,) = expand_methods([method])
    task_object = get_task(task)(data_file) if isinstance(task, str) else task
    examples = task_object.examples(split, limit)  # type: ignore[arg-type]
    steerer = steerer or Steerer(model, tokenizer, heads=heads, alpha=alpha, markup=None)
    pool = task_object.examples("train") if method.startswith("few-shot") else []
    demos = {kind: pick_demonstrations(pool, k_shot, seed, kind) for kind in ("score", "generate")}
    started = time.perf_counter()
    bar = tqdm(total=len(examples), desc=f"{task_object.name} / {method}", disable=not progress, leave=False)
    if method in CONTEXT_METHODS:
        from attnsteer.context.evaluation import run_context_method

        predictions = run_context_method(steerer, task_object, method, examples, bar)
    else:
        predictions = _run_scoring(steerer, task_object, method, examples, demos["score"], bar)
        predictions += _run_generation(steerer, task_object, method, examples, demos["generate"], batch_size, bar)
    bar.close()
    metrics = task_object.aggregate([prediction["metrics"] for prediction in predictions])
    config = {"split": split, "limit": limit, "k_shot": k_shot, "seed": seed, "alpha": steerer.config.alpha,
              "mode": steerer.config.mode, "heads": str(steerer.heads), "data_file": data_file}
    return EvalResult(task_object.name, method, metrics, predictions, config, time.perf_counter() - started)


def _emphasis(rendered: RenderedPrompt) -> list[tuple[int, int]] | None:
    return None if rendered.emphasis is None else [(span.start, span.end) for span in rendered.emphasis]


def _run_scoring(steerer: Steerer, task: Task, method: str, examples: Sequence[Example],
                 demos: Sequence[Example], bar: tqdm) -> list[dict[str, Any]]:
    predictions = []
    for example in (e for e in examples if e.kind == "score"):
        rendered = render(method, example, demos)
        emphasis = _emphasis(rendered)
        scores = steerer.score_candidates(rendered.text, example.candidates, emphasize=emphasis,
                                          steer=emphasis is not None)
        predictions.append({"id": example.id, "prompt": rendered.text, "emphasis": emphasis,
                            "scores": scores, "metrics": task.score_metrics(example, scores)})
        bar.update()
    return predictions


def _run_generation(steerer: Steerer, task: Task, method: str, examples: Sequence[Example],
                    demos: Sequence[Example], batch_size: int, bar: tqdm) -> list[dict[str, Any]]:
    predictions = []
    generating = [e for e in examples if e.kind == "generate"]
    for start in range(0, len(generating), batch_size):
        batch = generating[start : start + batch_size]
        rendered = [render(method, example, demos) for example in batch]
        emphasis = [_emphasis(r) for r in rendered]
        steer = emphasis[0] is not None
        outputs = steerer.generate([r.text for r in rendered], emphasize=emphasis if steer else None,
                                   max_new_tokens=max(e.max_new_tokens for e in batch), steer=steer)
        for example, prompt, spans, output in zip(batch, rendered, emphasis, outputs, strict=True):
            predictions.append({"id": example.id, "prompt": prompt.text, "emphasis": spans, "output": output,
                                "metrics": task.generation_metrics(example, output)})
        bar.update(len(batch))
    return predictions
