"""Context reuse: Q queries on one ~1,000-token context, plain vs prefix-cache reuse vs AutoPASTA vs LLMSteer.

The context is the first paragraphs of the packaged SQuAD "Normans" article (about 1,000 tokens);
the queries are that article's answerable questions on those paragraphs, as
"\\n\\nQuestion: ...\\nAnswer:". For each Q in --queries, every method answers the first Q queries
(greedy, --new-tokens tokens each) on the embedded model, timed end to end:
- plain: no reuse, context + query prefilled for every query;
- plain-reuse: the context prefilled once (unsteered), its cache reused for every query;
- autopasta: per query, an extraction generation + a steered re-encoding of the context + the answer;
- llmsteer: two readings + one steered prefill of the context, its cache reused for every query.
Each of --repeat rounds runs the methods in a rotated order; the figures are medians over rounds.
Prints total and per-query seconds, ratios against plain-reuse and AutoPASTA / LLMSteer;
`--quick` (Q = 16 only, one round) ends with one line `speedup_vs_autopasta=<ratio>` at Q = 16.
    .venv/bin/python benchmarks/context_reuse.py [--quick] [--queries 1,4,16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from importlib.resources import files

import torch

import attnsteer
from attnsteer.context import autopasta_generate, prepare_context

METHODS = ("plain", "plain-reuse", "autopasta", "llmsteer")


def context_and_queries(tokenizer, target_tokens: int) -> tuple[str, list[str]]:
    """Paragraphs of the Normans article until the context reaches `target_tokens`; their questions."""
    data = json.loads(files("attnsteer.tasks").joinpath("data", "squad_v2_dev_2articles.json").read_text())
    paragraphs, questions = [], []
    for paragraph in data["data"][0]["paragraphs"]:
        if len(tokenizer("\n\n".join(paragraphs))["input_ids"]) >= target_tokens:
            break
        paragraphs.append(paragraph["context"])
        questions += [qa["question"] for qa in paragraph["qas"] if not qa.get("is_impossible")]
    return "\n\n".join(paragraphs), [f"\n\nQuestion: {q}\nAnswer:" for q in questions]


def runners(steerer, context: str, new_tokens: int) -> dict[str, Callable[[list[str]], list[str]]]:
    """method -> a function answering a list of queries from scratch (preparation included)."""

    def plain(queries):
        return [prepare_context(steerer, context, "plain").generate(q, max_new_tokens=new_tokens) for q in queries]

    def reuse(method):
        def run(queries):
            prepared = prepare_context(steerer, context, method)
            return [prepared.generate(q, max_new_tokens=new_tokens) for q in queries]
        return run

    def autopasta(queries):
        return [autopasta_generate(steerer, context, q, new_tokens).text for q in queries]

    return {"plain": plain, "plain-reuse": reuse("plain"), "autopasta": autopasta, "llmsteer": reuse("llmsteer")}


def measure(run: Callable[[list[str]], list[str]], queries: list[str]) -> float:
    started = time.perf_counter()
    run(queries)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", default="1,4,16")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--context-tokens", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="Q = 16 only, one round")
    parser.add_argument("--heads", default=None, help="heads to steer (default: the model's shipped set)")
    args = parser.parse_args()
    counts = [16] if args.quick else [int(q) for q in args.queries.split(",")]
    repeat = 1 if args.quick else args.repeat
    model, tokenizer = attnsteer.load_model()
    steerer = attnsteer.Steerer(model, tokenizer, heads=args.heads, markup=None)
    context, queries = context_and_queries(tokenizer, args.context_tokens)
    if len(queries) < max(counts):
        raise SystemExit(f"only {len(queries)} queries on this context; lower --queries")
    run = runners(steerer, context, args.new_tokens)
    prepared = prepare_context(steerer, context, "llmsteer")
    print(f"context: {prepared.num_tokens} tokens, LLMSteer emphasises {int(prepared.emphasis_mask.sum())}; "
          f"heads {steerer.heads}, alpha {steerer.config.alpha}; {args.new_tokens} new tokens per query; "
          f"torch threads {torch.get_num_threads()}; {repeat} round(s), medians", flush=True)
    for method in METHODS:  # warm-up: first calls pay one-off costs
        run[method](queries[:1])
    totals = {(q, m): [] for q in counts for m in METHODS}
    for round_index in range(repeat):
        order = METHODS[round_index % len(METHODS):] + METHODS[: round_index % len(METHODS)]
        for q in counts:
            for method in order:
                totals[(q, method)].append(measure(run[method], queries[:q]))
    print(f"{'Q':>3} {'method':12} {'total s':>9} {'per query s':>12} {'x plain-reuse':>14}")
    medians = {key: statistics.median(values) for key, values in totals.items()}
    for q in counts:
        for method in METHODS:
            total = medians[(q, method)]
            print(f"{q:3d} {method:12} {total:9.2f} {total / q:12.3f} {total / medians[(q, 'plain-reuse')]:14.2f}")
        print(f"Q={q}: autopasta / llmsteer = {medians[(q, 'autopasta')] / medians[(q, 'llmsteer')]:.2f}x, "
              f"llmsteer / plain-reuse = {medians[(q, 'llmsteer')] / medians[(q, 'plain-reuse')]:.2f}x, "
              f"plain / llmsteer = {medians[(q, 'plain')] / medians[(q, 'llmsteer')]:.2f}x", flush=True)
    print(f"raw seconds per round: {json.dumps({f'{q}/{m}': v for (q, m), v in totals.items()})}")
    last = max(counts)
    print(f"speedup_vs_autopasta={medians[(last, 'autopasta')] / medians[(last, 'llmsteer')]:.2f}")


if __name__ == "__main__":
    main()
