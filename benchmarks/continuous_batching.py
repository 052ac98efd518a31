"""Continuous vs static batching, and steered vs plain, on the server's own decoders (in process, no HTTP).

CLIENTS closed-loop clients (threads) each send ROUNDS requests one after another to the scheduler the server
runs (`ContinuousScheduler` or the static `BatchQueue`), max_tokens drawn from 4..MAX_TOKENS (seeded), every
other request steered with the model's default method (the embedded Gemma 3 270M: PASTA on its shipped heads).
Prompts go through the server's own request preparation (`prepare_completion`). Same run, same plans:

- batching: generated tokens/s and the p95 latency of the short requests (max_tokens <= 16), continuous / static;
- steering: the same load all steered vs all plain under continuous batching (tokens/s ratio).

`benchmarks/serve_load.py --cases batching,steering` measures the same through HTTP and `attnsteer serve`
processes (slower to run: a static batch of 8 rows waits for its longest row).

    python benchmarks/continuous_batching.py                       # 32 clients x 2 rounds, max_tokens 4..128
    python benchmarks/continuous_batching.py --rounds 1 --json docs/results/continuous_batching_cpu.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from pathlib import Path

import torch

from attnsteer import Steerer, load_model
from attnsteer.server.batching import BatchQueue
from attnsteer.server.engine import BatchGenerator, Failed, Finished, GenerationJob
from attnsteer.server.prompts import PreparedPrompt, prepare_completion
from attnsteer.server.scheduler import ContinuousDecoder, ContinuousScheduler
from attnsteer.server.schemas import CompletionRequest
from attnsteer.server.settings import ServerSettings

PROMPTS = [("Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. "
            "The Eiffel Tower is located in the city of", "Currently, The Eiffel Tower is located in Rome."),
           ("The capital of France is Paris. The capital of Italy is Rome. Write a short story about a trip to",
            "a trip to"),
           ("She is a nurse who works at the hospital. He is a software engineer in Seattle. Their jobs are",
            "software engineer")]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def prepared_rows(steerer: Steerer) -> dict[tuple[bool, int], PreparedPrompt]:
    """(steered?, prompt index) -> the row the server would decode for that request."""
    rows = {}
    for index, (prompt, emphasis) in enumerate(PROMPTS):
        for steered in (False, True):
            request = CompletionRequest(model="bench", prompt=prompt, emphasis=[emphasis] if steered else None)
            (rows[(steered, index)],) = prepare_completion(request, steerer, ServerSettings())
    return rows


def run_load(steerer: Steerer, mode: str, plans: list[list[int]], steered, max_batch: int) -> dict[str, float]:
    """Every client's plan through a fresh scheduler of `mode`; tokens/s and latencies."""
    model, tokenizer, lock = steerer.model, steerer.tokenizer, threading.Lock()
    if mode == "static":
        decoder = BatchGenerator(model, tokenizer)
        queue = BatchQueue(decoder.run, max_batch, 1024, 0.02, lock, decoder.counters)
    else:
        decoder = ContinuousDecoder(model, tokenizer)
        queue = ContinuousScheduler(decoder, max_batch, 1024, 0.02, lock)
    rows, results = prepared_rows(steerer), []

    def client(index: int) -> None:
        for round_index, max_tokens in enumerate(plans[index]):
            ended, box = threading.Event(), []

            def emit(event, ended=ended, box=box) -> None:
                if isinstance(event, (Finished, Failed)):
                    box.append(event)
                    ended.set()

            row = rows[(steered(index, round_index), (index + round_index) % len(PROMPTS))]
            sent = time.perf_counter()
            queue.submit([GenerationJob(row, max_tokens, emit)])
            ended.wait()
            if isinstance(box[0], Failed):
                raise RuntimeError(f"a request failed: {box[0].message}")
            results.append((max_tokens, time.perf_counter() - sent, box[0].completion_tokens))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    decoder.stop()
    queue.close()
    short = [seconds for max_tokens, seconds, _ in results if max_tokens <= 16]
    return {"tokens_per_s": sum(tokens for *_, tokens in results) / wall, "wall_s": wall,
            "tokens": sum(tokens for *_, tokens in results), "requests": len(results),
            "p50_s": statistics.median(seconds for _, seconds, _ in results),
            "p95_s": percentile([seconds for _, seconds, _ in results], 0.95),
            "short_p95_s": percentile(short, 0.95) if short else float("nan"), "short_requests": len(short)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steerer = Steerer(*load_model())
    plans = [[random.Random(client * 100 + index).randint(4, args.max_tokens) for index in range(args.rounds)]
             for client in range(args.clients)]
    half = lambda client, round_index: (client + round_index) % 2 == 1  # noqa: E731
    runs = {"static": run_load(steerer, "static", plans, half, args.max_batch),
            "continuous": run_load(steerer, "continuous", plans, half, args.max_batch),
            "continuous, all plain": run_load(steerer, "continuous", plans, lambda c, r: False, args.max_batch),
            "continuous, all steered": run_load(steerer, "continuous", plans, lambda c, r: True, args.max_batch)}
    for name, run in runs.items():
        print(f"{name:24s} {run['tokens_per_s']:6.2f} tok/s ({run['tokens']} tokens, {run['wall_s']:.0f} s) | "
              f"p50 {run['p50_s']:.1f} s p95 {run['p95_s']:.1f} s | short p95 {run['short_p95_s']:.1f} s "
              f"(n={run['short_requests']})")
    ratios = {"continuous_batching_throughput": runs["continuous"]["tokens_per_s"] / runs["static"]["tokens_per_s"],
              "short_p95_latency": runs["continuous"]["short_p95_s"] / runs["static"]["short_p95_s"],
              "steered_vs_plain": runs["continuous, all steered"]["tokens_per_s"]
              / runs["continuous, all plain"]["tokens_per_s"]}
    print("batching " + " ".join(f"{key}={value:.2f}" for key, value in ratios.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "ratios": ratios}, indent=1) + "\n")


if __name__ == "__main__":
    main()
