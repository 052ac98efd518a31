"""`attnsteer ask`: several queries on one context file, with LLMSteer, AutoPASTA or plain."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from attnsteer.cli.main import app, exits_2_on_bad_input
from attnsteer.cli.options import (
    AlphaOption,
    BoostOption,
    ChatOption,
    DeviceMapOption,
    GranularityOption,
    HeadsOption,
    MaxMemoryOption,
    ModelOption,
    ModeOption,
    OffloadFolderOption,
    SteeringOption,
    TargetOption,
    check_chat,
    check_steering,
    placement_options,
)

ASK_METHODS = ("llmsteer", "autopasta", "plain")


def read_context(path: str) -> str:
    """The context file's text; a missing, unreadable or empty file is a ContextError."""
    from attnsteer.context.config import ContextError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ContextError(f"cannot read the context file {path!r}: {err}") from None
    if not text.strip():
        raise ContextError(f"the context file {path!r} is empty")
    return text


@app.command("ask")
@exits_2_on_bad_input
def ask(
    context: Annotated[str, typer.Option(help="A text file holding the context.")],
    query: Annotated[list[str], typer.Option(help="A query, appended after the context (repeatable).")],
    method: Annotated[str, typer.Option(help="The context method, which picks the tokens to emphasise: llmsteer "
                                        "(steer the context once, reuse its cache), autopasta (the model picks the "
                                        "key sentence per query) or plain. --steering says how they are steered.")]
    = "llmsteer",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate per query.")] = 32,
    steering: SteeringOption = None,
    heads: HeadsOption = None,
    alpha: AlphaOption = None,
    mode: ModeOption = None,
    boost: BoostOption = None,
    target: TargetOption = None,
    granularity: GranularityOption = None,
    top_k: Annotated[int | None, typer.Option(help="LLMSteer: emphasise the top-k tokens of both readings.")]
    = None,
    top_fraction: Annotated[float, typer.Option(help="LLMSteer: k as a fraction of the context's tokens "
                            "(when --top-k is not given).")] = 0.1,
    sentences: Annotated[int, typer.Option(help="AutoPASTA: sentences to emphasise.")] = 1,
    model: ModelOption = None,
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    chat: ChatOption = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object per query.")] = False,
) -> None:
    """Answer each --query after the --context text (greedy decoding; through the chat template, context +
    query are one user message). --steering chooses how the emphasised tokens are steered."""
    from attnsteer.context.config import AutoPastaConfig, ContextError, LLMSteerConfig

    if method not in ASK_METHODS:
        raise ContextError(f"unknown method {method!r}; allowed: {', '.join(ASK_METHODS)}")
    if any(not q.strip() for q in query):
        raise ContextError("a --query is empty; give some text")
    text = read_context(context)
    steering_options = check_steering(steering, heads=heads, alpha=alpha, mode=mode, boost=boost, target=target,
                                      granularity=granularity)
    llmsteer = LLMSteerConfig(top_k=top_k, top_fraction=top_fraction)
    autopasta = AutoPastaConfig(num_sentences=sentences)
    check_chat(chat)
    from attnsteer.chat import resolve_chat
    from attnsteer.models import load_model
    from attnsteer.steerer import Steerer

    loaded, tokenizer = load_model(model, **placement_options(device_map, max_memory, offload_folder))
    steerer = Steerer(loaded, tokenizer, markup=None, **steering_options)
    templated = resolve_chat(chat, tokenizer)
    for row in answer_all(steerer, text, query, method, max_new_tokens, llmsteer, autopasta, templated):
        typer.echo(json.dumps(row) if json_out else f"Q: {row['query']}\nA: {row['answer']}\n")


def answer_all(steerer, text: str, queries: list[str], method: str, max_new_tokens: int, llmsteer,
               autopasta, chat: bool = False) -> list[dict]:
    """One dict per query: query, answer, seconds, and what was emphasised."""
    from attnsteer.context import autopasta_generate, prepare_context

    rows = []
    started = time.perf_counter()
    prepared = None
    if method != "autopasta":
        prepared = prepare_context(steerer, text, method, llmsteer=llmsteer, chat=chat)
        typer.echo(f"prepared the context ({prepared.num_tokens} tokens, {method}) in "
                   f"{time.perf_counter() - started:.2f} s", err=True)
    for query in queries:
        began = time.perf_counter()
        if prepared is not None:
            row = {"query": query, "answer": prepared.generate(query, max_new_tokens=max_new_tokens),
                   "emphasised_tokens": prepared.emphasised_text}
        else:
            answer = autopasta_generate(steerer, text, query, max_new_tokens, autopasta, chat=chat)
            row = {"query": query, "answer": answer.text, "sentences": list(answer.sentences),
                   "fell_back": answer.fell_back}
        rows.append({**row, "seconds": round(time.perf_counter() - began, 3)})
    return rows
