"""Load on a local `attnsteer serve`: requests/s and p50/p95 latency, steered vs plain requests.

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
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
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
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the server process
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
