"""The `autopasta` and `llmsteer` evaluation methods: tasks whose examples mark their context.

An example's prompt is split at `reference["context_end"]` into context and query. `llmsteer`
prepares each distinct context once (a `ContextStore` per run, so SQuAD questions on one
paragraph share its steered cache) and answers the query on it; `autopasta` runs the whole
extraction + steered answer per example. Greedy, `example.max_new_tokens` new tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attnsteer.context.autopasta import autopasta_generate
from attnsteer.context.config import ContextError, LLMSteerConfig, split_context
from attnsteer.context.frame import ChatFrame
from attnsteer.context.prepare import prepare_context
from attnsteer.context.store import ContextStore

if TYPE_CHECKING:
    from attnsteer.evaluation.runner import EvalProgress
    from attnsteer.steerer import Steerer
    from attnsteer.tasks import Example, Task


def run_context_method(steerer: Steerer, task: Task, method: str, examples: Sequence[Example],
                       bar: EvalProgress, chat: bool = False,
                       llmsteer: LLMSteerConfig | None = None) -> list[dict[str, Any]]:
    """One prediction dict per example (as the runner's), with what each method chose.

    bar: moved per example, and per generated token of an llmsteer answer.

    method: "llmsteer" or "autopasta" (the evaluation methods with `reads_context`).
    chat: the prompt (context + query) is one user message through the tokenizer's chat template, as the
        runner's other methods read it with chat=True.
    llmsteer: how LLMSteer picks its tokens (default `LLMSteerConfig()`).
    """
    if method not in ("llmsteer", "autopasta"):
        raise ContextError(f"run_context_method runs 'llmsteer' or 'autopasta', not {method!r}")
    pairs = [split_context(task, method, example) for example in examples]
    frame = ChatFrame.of(steerer.tokenizer) if chat else ChatFrame("", "")
    store = ContextStore()
    predictions = []
    for example, (context, query) in zip(examples, pairs, strict=True):
        if method == "llmsteer":
            output, chosen, extra = _answer_llmsteer(steerer, store, context, query, example, bar, chat, llmsteer)
        else:
            output, chosen, extra = _answer_autopasta(steerer, context, query, example, chat)
        metrics = {**task.generation_metrics(example, output), **extra}
        prompt = frame.head + example.prompt + frame.tail  # the text the model read for its answer
        predictions.append({"id": example.id, "prompt": prompt, "emphasis": None, "output": output,
                            **chosen, "metrics": metrics})
        bar.finished()
    if method == "llmsteer" and predictions:
        predictions[-1]["context_store"] = store.stats()
    return predictions


Answer = tuple[str, dict[str, Any], dict[str, float]]  # (output, what was emphasised, extra metrics)


def _answer_llmsteer(steerer: Steerer, store: ContextStore, context: str, query: str, example: Example,
                     bar: EvalProgress, chat: bool, llmsteer: LLMSteerConfig | None) -> Answer:
    """The context prepared once per distinct text (`store`), the query answered on its steered cache."""
    prepared = prepare_context(steerer, context, "llmsteer", store=store, chat=chat, llmsteer=llmsteer)
    output = prepared.generate(query, max_new_tokens=example.max_new_tokens,
                               streamer=bar.streamer(1, example.max_new_tokens))
    return output, {"emphasised_tokens": prepared.emphasised_text}, {}


def _answer_autopasta(steerer: Steerer, context: str, query: str, example: Example, chat: bool) -> Answer:
    """The model names the key sentence for this query, then answers with it emphasised."""
    answer = autopasta_generate(steerer, context, query, example.max_new_tokens,
                                extraction_query=example.reference.get("question"), chat=chat)
    chosen = {"sentences": list(answer.sentences), "extraction": answer.extraction}
    return answer.text, chosen, {"fell_back": float(answer.fell_back)}
