"""The reliability issue's targets, measured on a real `attnsteer serve` (embedded Gemma 3 270M unless --model).

Starts the server as a separate process (`--max-batch 8 --max-waiting 16`, as the probe did) and measures:
1. a 1 MB prompt with 10,000 emphasis entries: time to its answer (status) and the slowest `/health`
   answer while it is checked (the issue's target: 400 within 1 s, /health under 100 ms);
2. a 2-token request: its idle latency, then its latency right after 5 clients abandoned non-streaming
   200-token requests (target: within 2x idle);
3. `kill -TERM` while 3 long requests decode: seconds until the process exits (target: under 5 s), and
   what the in-flight clients got.
Every figure is measured in this run; ratios are against a baseline measured in the same run.

    python benchmarks/serve_faults.py
    python benchmarks/serve_faults.py --model DIR
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import free_port, start_server  # noqa: E402

PROMPT = ("Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome. "
          "The Eiffel Tower is located in the city of")


def start(model: str | None, port: int) -> subprocess.Popen:
    return start_server(port, model, ["--max-batch", "8", "--max-waiting", "16", "--max-tokens", "256"])


def post(url: str, body: bytes, timeout: float = 300) -> tuple[object, float]:
    """(status or the exception's name, seconds)."""
    started = time.perf_counter()
    request = urllib.request.Request(url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status: object = response.status
    except urllib.error.HTTPError as error:
        body = error.read()
        message = json.loads(body)["error"]["message"] if body.startswith(b"{") else body.decode(errors="replace")
        status = f"{error.code} {message[:100]!r}"
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        status = repr(error)[:80]
    return status, time.perf_counter() - started


def completion(max_tokens: int, **extra) -> bytes:
    return json.dumps({"model": "bench", "prompt": PROMPT, "max_tokens": max_tokens, **extra}).encode()


def huge_request(url: str) -> None:
    body = json.dumps({"model": "bench", "prompt": "a " * 500_000, "max_tokens": 1, "emphasis": ["a"] * 10_000})
    health: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            started = time.perf_counter()
            urllib.request.urlopen(url + "/health", timeout=60).read()
            health.append(time.perf_counter() - started)

    watcher = threading.Thread(target=watch)
    watcher.start()
    status, seconds = post(url, body.encode())
    done.set()
    watcher.join()
    print(f"1 MB prompt, 10,000 emphasis entries ({len(body) / 1e6:.2f} MB body): {status} in {seconds:.3f} s; "
          f"slowest /health meanwhile {max(health) * 1000:.1f} ms over {len(health)} calls")


def abandoned(url: str) -> None:
    post(url, completion(2))  # warm
    idle = sorted(post(url, completion(2))[1] for _ in range(5))[2]
    clients = [threading.Thread(target=post, args=(url, completion(200)), kwargs={"timeout": 1.0}) for _ in range(5)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    status, after = post(url, completion(2))
    print(f"2-token request: idle {idle:.3f} s (median of 5); after 5 abandoned 200-token requests {after:.3f} s "
          f"({status}); ratio {after / idle:.2f}x")


def sigterm(model: str | None) -> None:
    port = free_port()
    process = start(model, port)
    url = f"http://127.0.0.1:{port}"
    answers: list[object] = []
    clients = [threading.Thread(target=lambda: answers.append(post(url, completion(256))[0])) for _ in range(3)]
    for client in clients:
        client.start()
    time.sleep(2.0)
    signalled = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    stopped = time.perf_counter() - signalled
    for client in clients:
        client.join()
    print(f"SIGTERM with 3 long requests in flight: exited after {stopped:.2f} s; clients got {answers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded model)")
    args = parser.parse_args()
    port = free_port()
    process = start(args.model, port)
    try:
        huge_request(f"http://127.0.0.1:{port}")
        abandoned(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=120)
    sigterm(args.model)


if __name__ == "__main__":
    main()
