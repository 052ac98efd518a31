"""Load on a local `attnsteer serve`: requests/s and p50/p95 latency, steered vs plain requests; and the serving
engine's cases (`--cases`), each against a baseline measured in the same run:

- prefix: a ~1,000-token steered context, then 16 different questions on it: median time to first token with
  the steered prefix cache (hits) vs a server started with `--prefix-cache-bytes 0`;
- batching: 32 closed-loop clients, max_tokens drawn from 4..128 (seeded), half the requests steered:
  generated tokens/s and the p95 latency of the short requests (<= 16 tokens), `--batching continuous` vs
  `--batching static`;
- steering: the same load all steered vs all plain (continuous batching): tokens/s ratio.

    python benchmarks/serve_load.py --cases prefix,batching,steering --quick
    # -> one line: serve prefix_cache_ttft_speedup=<r> continuous_batching_throughput=<r> steered_vs_plain=<r>

Starts `attnsteer serve` (embedded Gemma 3 270M unless --model) as a separate process on a free
loopback port, then for each concurrency C in --concurrency keeps C clients busy, each sending its
requests back to back (the OpenAI /v1/completions body; steered requests add `emphasis`). Rounds are
rotated over (C, kind) and repeated --repeat times, so noise on a shared machine hits every cell alike.
Per cell: requests/s (median over rounds), p50 / p95 latency (over every request of every round),
and the steered / plain ratios measured in the same run.

    python benchmarks/serve_load.py                         # C in {1, 4, 16}, 3 rounds, 8 new tokens
    python benchmarks/serve_load.py --repeat 1 --concurrency 1,4 --max-tokens 4   # quicker
    python benchmarks/serve_load.py --json docs/results/serve_load_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROMPT = ("Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. "
          "The Eiffel Tower is located in the city of")
EMPHASIS = "Currently, The Eiffel Tower is located in Rome."
KINDS = ("plain", "steered")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, model: str | None = None, options: Sequence[str] = ()) -> subprocess.Popen:
    """`attnsteer serve` (model id "bench") on `port` with extra `options`; returns once /health answers."""
    attnsteer = str(Path(sys.executable).with_name("attnsteer"))
    command = [attnsteer, "serve", "--port", str(port), "--model-name", "bench", *options]
    if model:
        command += ["--model", model]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"attnsteer serve exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            return process
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("attnsteer serve did not come up in 600 s")


def one_request(url: str, kind: str, max_tokens: int) -> float:
    """Seconds for one completion request (raises on any non-200)."""
    body = {"model": "bench", "prompt": PROMPT, "max_tokens": max_tokens}
    if kind == "steered":
        body["emphasis"] = [EMPHASIS]
    request = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.loads(response.read())
    elapsed = time.perf_counter() - started
    if answer["usage"]["completion_tokens"] < 1:
        raise RuntimeError(f"empty completion: {answer}")
    return elapsed


def run_round(url: str, kind: str, concurrency: int, requests: int, max_tokens: int) -> tuple[float, list[float]]:
    """(requests/s, latencies) for `requests` requests kept `concurrency` in flight."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(lambda _: one_request(url, kind, max_tokens), range(requests)))
    return requests / (time.perf_counter() - started), latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(args: argparse.Namespace, url: str) -> dict[tuple[int, str], dict[str, float]]:
    cells = [(c, kind) for c in args.concurrency for kind in KINDS]
    rates: dict = {cell: [] for cell in cells}
    latencies: dict = {cell: [] for cell in cells}
    one_request(url, "steered", args.max_tokens)  # warm-up
    for round_index in range(args.repeat):
        shift = round_index % len(cells)
        for concurrency, kind in cells[shift:] + cells[:shift]:
            count = max(args.min_requests, args.requests_per_client * concurrency)
            rate, times = run_round(url, kind, concurrency, count, args.max_tokens)
            rates[(concurrency, kind)].append(rate)
            latencies[(concurrency, kind)] += times
            print(f"  round {round_index + 1}: C={concurrency:<3} {kind:<8} {rate:6.2f} req/s", file=sys.stderr)
    return {cell: {"requests_per_s": statistics.median(rates[cell]), "p50_s": percentile(latencies[cell], 0.5),
                   "p95_s": percentile(latencies[cell], 0.95), "requests": len(latencies[cell])} for cell in cells}


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [f"serve_load: {args.model or 'embedded Gemma 3 270M'}, prompt 30 tokens, max_tokens {args.max_tokens}, "
             f"max_batch {args.max_batch}, {args.repeat} rotated rounds; {platform.machine()} "
             f"{os.cpu_count()} CPUs",
             f"{'C':>3} {'kind':<8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'n':>4}"]
    for (concurrency, kind), cell in results.items():
        lines.append(f"{concurrency:>3} {kind:<8} {cell['requests_per_s']:7.2f} {cell['p50_s']:7.2f} "
                     f"{cell['p95_s']:7.2f} {cell['requests']:>4}")
    lines.append("steered / plain (same run):")
    for concurrency in args.concurrency:
        steered, plain = results[(concurrency, "steered")], results[(concurrency, "plain")]
        lines.append(f"  C={concurrency:<3} req/s x{steered['requests_per_s'] / plain['requests_per_s']:.2f}  "
                     f"p50 x{steered['p50_s'] / plain['p50_s']:.2f}  p95 x{steered['p95_s'] / plain['p95_s']:.2f}")
    for concurrency in args.concurrency[1:]:
        base, cell = results[(args.concurrency[0], "plain")], results[(concurrency, "plain")]
        lines.append(f"batching: plain req/s at C={concurrency} / C={args.concurrency[0]}: "
                     f"x{cell['requests_per_s'] / base['requests_per_s']:.2f}")
    return "\n".join(lines)


# ----- the serving engine's cases ---------------------------------------------------------------------------------
QUESTIONS = [f"Question {index + 1}: in one word, what is the occupation of person number {index + 1} above?"
             for index in range(16)]


def long_context(tokens: int = 1000) -> tuple[str, str]:
    """(context, its emphasised sentence): bios from the package's BiasBios data, about `tokens` tokens long."""
    from attnsteer.tasks.bios import load_bios

    bios = [bio.text for bio in load_bios(None)]
    text, index = "", 0
    while len(text) < 4.2 * tokens:  # about 4.2 characters per token on these bios
        text += f"Person {index + 1}: {bios[index]}\n"
        index += 1
    return text, text.split("\n")[0]


def post(url: str, body: dict, stream: bool = False) -> tuple[float, float, int]:
    """(seconds to the first generated text, seconds to the end, completion tokens) of one request."""
    body = {"model": "bench", **body, "stream": stream, **({"stream_options": {"include_usage": True}} if stream
                                                          else {})}
    request = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    first, tokens = None, 0
    with urllib.request.urlopen(request, timeout=1800) as response:
        if not stream:
            answer = json.loads(response.read())
            elapsed = time.perf_counter() - started
            return elapsed, elapsed, answer["usage"]["completion_tokens"]
        for line in response:
            line = line.decode().strip()
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if first is None and any(choice.get("text") for choice in chunk.get("choices", [])):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    total = time.perf_counter() - started
    return (first if first is not None else total), total, tokens


def with_server(model: str | None, options: Sequence[str], work):
    """Run work(url) against a fresh `attnsteer serve` with `options`; the server is stopped afterwards."""
    port = free_port()
    server = start_server(port, model, options)
    try:
        return work(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=60)


def prefix_case(args: argparse.Namespace) -> dict[str, float]:
    """Median time to first token of 16 questions on one steered context: cache hits vs no cache."""
    context, sentence = long_context()
    questions = QUESTIONS[: 6 if args.quick else 16]

    def ttfts(url: str) -> list[float]:
        post(url, {"prompt": context + "Warm-up question?", "max_tokens": 2, "emphasis": [sentence]})  # the miss
        return [post(url, {"prompt": context + question, "max_tokens": 4, "emphasis": [sentence]}, stream=True)[0]
                for question in questions]

    options = ["--max-prompt-tokens", "2048"]
    cached = with_server(args.model, options, ttfts)
    uncached = with_server(args.model, [*options, "--prefix-cache-bytes", "0"], ttfts)
    result = {"ttft_hit_median_s": statistics.median(cached), "ttft_uncached_median_s": statistics.median(uncached),
              "questions": len(questions)}
    result["prefix_cache_ttft_speedup"] = result["ttft_uncached_median_s"] / result["ttft_hit_median_s"]
    return result


def load_run(url: str, clients: int, plans: list[list[int]], steered: Callable[[int, int], bool]) -> dict:
    """Closed-loop clients, client c sending plans[c] (max_tokens each) one after another: tokens/s, p95s."""
    results: list[tuple[int, float, int]] = []

    def client(index: int) -> None:
        for round_index, max_tokens in enumerate(plans[index]):
            body = {"prompt": PROMPT, "max_tokens": max_tokens}
            if steered(index, round_index):
                body["emphasis"] = [EMPHASIS]
            _, seconds, tokens = post(url, body)
            results.append((max_tokens, seconds, tokens))

    post(url, {"prompt": PROMPT, "max_tokens": 2, "emphasis": [EMPHASIS]})  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    short = [seconds for max_tokens, seconds, _ in results if max_tokens <= 16]
    return {"tokens_per_s": sum(tokens for *_, tokens in results) / wall, "wall_s": wall,
            "p95_s": percentile([seconds for _, seconds, _ in results], 0.95),
            "short_p95_s": percentile(short, 0.95) if short else None, "requests": len(results)}


def plans_for(args: argparse.Namespace, clients: int, high: int) -> list[list[int]]:
    rounds = 1 if args.quick else 2
    return [[random.Random(client * 100 + index).randint(4, high) for index in range(rounds)]
            for client in range(clients)]


def batching_case(args: argparse.Namespace) -> dict[str, object]:
    """32 clients, max_tokens 4..128, half steered: continuous vs static batching."""
    plans = plans_for(args, 32, 128)
    options = ["--max-batch", str(args.max_batch), "--max-waiting", "256", "--max-tokens", "128"]
    runs = {mode: with_server(args.model, [*options, "--batching", mode],
                              lambda url: load_run(url, 32, plans, lambda c, r: (c + r) % 2 == 1))
            for mode in ("static", "continuous")}
    static, continuous = runs["static"], runs["continuous"]
    return {**runs, "continuous_batching_throughput": continuous["tokens_per_s"] / static["tokens_per_s"],
            "short_p95_ratio": (continuous["short_p95_s"] / static["short_p95_s"]
                                if static["short_p95_s"] and continuous["short_p95_s"] else None)}


def steering_case(args: argparse.Namespace) -> dict[str, object]:
    """The same load (16 clients, max_tokens 4..64), all steered vs all plain, continuous batching."""
    plans = plans_for(args, 16, 64)
    options = ["--max-batch", str(args.max_batch), "--max-waiting", "256", "--max-tokens", "128"]

    def both(url: str) -> dict[str, dict]:
        return {kind: load_run(url, 16, plans, lambda c, r, kind=kind: kind == "steered")
                for kind in ("plain", "steered", "plain ", "steered ")}  # two rounds each, alternating

    runs = with_server(args.model, options, both)
    plain = statistics.mean(runs[k]["tokens_per_s"] for k in ("plain", "plain "))
    steered = statistics.mean(runs[k]["tokens_per_s"] for k in ("steered", "steered "))
    return {"runs": runs, "steered_vs_plain": steered / plain}


CASES = {"prefix": prefix_case, "batching": batching_case, "steering": steering_case}


def run_cases(args: argparse.Namespace) -> None:
    results = {}
    for name in args.cases:
        results[name] = CASES[name](args)
        print(f"{name}: {json.dumps(results[name], default=str)}", file=sys.stderr, flush=True)
    summary = {"prefix_cache_ttft_speedup": results.get("prefix", {}).get("prefix_cache_ttft_speedup"),
               "continuous_batching_throughput": results.get("batching", {}).get("continuous_batching_throughput"),
               "steered_vs_plain": results.get("steering", {}).get("steered_vs_plain")}
    print("serve " + " ".join(f"{key}={'-' if value is None else f'{value:.2f}'}" for key, value in summary.items()))
    if "batching" in results and results["batching"]["short_p95_ratio"] is not None:
        print(f"short-request p95 latency, continuous / static: x{results['batching']['short_p95_ratio']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "cases": results, "summary": summary},
                                              indent=1, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the embedded model)")
    parser.add_argument("--concurrency", type=lambda text: [int(x) for x in text.split(",")], default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--min-requests", type=int, default=8)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--cases", type=lambda text: text.split(","), default=None,
                        help="serving-engine cases: prefix, batching, steering (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="cases: fewer questions and one request per client")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the server process
    if args.cases:
        unknown = sorted(set(args.cases) - set(CASES))
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
        run_cases(args)
        return
    port = free_port()
    server = start_server(port, args.model, ["--max-batch", str(args.max_batch),
                                             "--max-waiting", str(max(64, 2 * max(args.concurrency)))])
    try:
        results = measure(args, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(report(results, args))
    if args.json:
        rows = [{"concurrency": c, "kind": kind, **cell} for (c, kind), cell in results.items()]
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
