"""Replicas on Ray Serve: context-affinity routing vs random routing, and a replica killed mid-load (issue 16).

A local Ray on this machine serves --replicas replicas of the model (embedded Gemma 3 270M unless --model) behind
Ray's HTTP proxy (`attnsteer.server.cluster.build_app`). The load: --contexts SQuAD paragraphs (the packaged
dev articles, the paragraphs with the most questions) x --queries questions each, as
"<paragraph>\\n\\nQuestion: <q>\\nAnswer:", the paragraph emphasised (PASTA, the model's default heads), greedy,
--new-tokens tokens, sent by --concurrency clients in an interleaved order (context 1 q1, context 2 q1, ...).

1. affinity: fresh replicas, the load; steered prefix-cache hits / lookups summed over the replicas
   (`GET /health`), share of prompt tokens read from the cache, median and p90 latency, wall time.
2. kill: on the same replicas, the load again with new question order; after a quarter of the requests
   answered, the replica holding context 1 is killed (`ray.kill`). Clients retry a 503 (after its Retry-After,
   at most 5 times). Reported: first-attempt statuses (the killed replica's in-flight requests: 503
   replica_unavailable), final statuses (every request answered?), seconds until Ray runs a replacement.
3. random: fresh replicas with `routing="random"`, the same load as 1: the baseline, measured in the same run.

    .venv/bin/python benchmarks/ray_affinity.py                  # embedded model, 2 replicas, 4 x 8
    .venv/bin/python benchmarks/ray_affinity.py --model DIR --queries 4 --out docs/results/ray_affinity_cpu.txt
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

import ray
from ray import serve

from attnsteer.server import ServerSettings
from attnsteer.server.cluster import ReplicaSpec, build_app

APP = "attnsteer"
MODEL_NAME = "bench"


def load(contexts: int, queries: int) -> list[list[dict]]:
    """[context][query] completion bodies: the SQuAD paragraphs with the most questions, emphasised."""
    data = json.loads(files("attnsteer.tasks").joinpath("data", "squad_v2_dev_2articles.json").read_text())
    paragraphs = [p for article in data["data"] for p in article["paragraphs"] if len(p["qas"]) >= queries]
    paragraphs = sorted(paragraphs, key=lambda p: -len(p["qas"]))[:contexts]
    if len(paragraphs) < contexts:
        raise SystemExit(f"only {len(paragraphs)} paragraphs have {queries} questions; ask for fewer")
    return [[{"model": MODEL_NAME, "prompt": f"{p['context']}\n\nQuestion: {qa['question']}\nAnswer:",
              "emphasis": [p["context"]]} for qa in p["qas"][:queries]] for p in paragraphs]


def interleaved(bodies: list[list[dict]], new_tokens: int, shift: int = 0) -> list[tuple[int, dict]]:
    """(context index, body) in the order q1 of every context, q2 of every context, ...; `shift` rotates the
    questions (a second load asks them in another order)."""
    queries = len(bodies[0])
    return [(c, {**bodies[c][(q + shift) % queries], "max_tokens": new_tokens})
            for q in range(queries) for c in range(len(bodies))]


def post(url: str, body: dict, retries: int = 0) -> dict:
    """One request (retrying a 503 after its Retry-After): first and final status, seconds, replica, tries."""
    started, first, tries = time.perf_counter(), None, 0
    while True:
        tries += 1
        request = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                response.read()
                status, headers = response.status, response.headers
        except urllib.error.HTTPError as error:
            error.read()
            status, headers = error.code, error.headers
        first = first or status
        if status != 503 or tries > retries:
            return {"first": first, "status": status, "seconds": time.perf_counter() - started, "tries": tries,
                    "replica": headers.get("x-attnsteer-replica")}
        time.sleep(float(headers.get("retry-after", "1")))


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/health", timeout=60) as response:
        return json.loads(response.read())


def run_load(url: str, requests: list[tuple[int, dict]], concurrency: int, retries: int = 0,
             observer: KillSwitch | None = None) -> tuple[list[dict], float]:
    """Send the requests with `concurrency` clients; (one result per request, in order; wall seconds)."""
    started = time.perf_counter()

    def one(item: tuple[int, dict]) -> dict:
        if observer is not None:
            observer.sending(item[0])
        result = {**post(url, item[1], retries), "context": item[0]}
        if observer is not None:
            observer.answered(result)
        return result

    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, requests))
    return results, time.perf_counter() - started


class KillSwitch:
    """Once `after` requests are answered, waits half their median latency (so the requests sent meanwhile reach
    their replica) and kills (`ray.kill`) a replica with requests in flight: the one that answered their context."""

    def __init__(self, after: int) -> None:
        self.after, self.lock = after, threading.Lock()
        self.in_flight: Counter[int] = Counter()
        self.owners: dict[int, str] = {}  # context -> the replica that answered it
        self.seconds: list[float] = []
        self.victim: str | None = None
        self.at = self.victim_in_flight = self.done_at_kill = 0

    def sending(self, context: int) -> None:
        with self.lock:
            self.in_flight[context] += 1

    def answered(self, result: dict) -> None:
        with self.lock:
            self.in_flight[result["context"]] -= 1
            self.seconds.append(result["seconds"])
            if self.victim is None:
                self.owners[result["context"]] = result["replica"]
            if len(self.seconds) == self.after:
                threading.Timer(statistics.median(self.seconds) / 2, self.kill).start()

    def kill(self) -> None:
        with self.lock:
            busy = [c for c, n in self.in_flight.items() if n > 0 and c in self.owners]
            if not busy:
                return
            self.victim, self.at, self.done_at_kill = self.owners[busy[0]], time.perf_counter(), len(self.seconds)
            self.victim_in_flight = sum(n for c, n in self.in_flight.items() if self.owners.get(c) == self.victim)
        ray.kill(ray.get_actor(f"SERVE_REPLICA::{APP}#SteeredReplica#{self.victim}", namespace="serve"),
                 no_restart=True)


def cache_figures(before: dict, after: dict) -> dict:
    """Steered prefix-cache hits / lookups and the share of prompt tokens read from it, over the load."""
    delta = {name: after["prefix_cache"][name] - before["prefix_cache"][name]
             for name in ("hits", "misses", "hit_tokens", "prefilled_tokens")}
    lookups, tokens = delta["hits"] + delta["misses"], delta["hit_tokens"] + delta["prefilled_tokens"]
    return {**delta, "hit_rate": delta["hits"] / max(lookups, 1), "token_share": delta["hit_tokens"] / max(tokens, 1)}


def counts(statuses) -> dict[int, int]:
    """{status: how many}, by status."""
    statuses = list(statuses)
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def latency_line(name: str, results: list[dict], wall: float, cache: dict) -> str:
    seconds = sorted(result["seconds"] for result in results)
    p90 = seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))]
    statuses = counts(r["status"] for r in results)
    split = sorted(Counter(r["replica"] for r in results).values(), reverse=True)
    return (f"{name}: {len(results)} requests {statuses}, per replica {split}, prefix-cache hit rate "
            f"{cache['hit_rate']:.1%} "
            f"({cache['hits']}/{cache['hits'] + cache['misses']}), prompt tokens from the cache "
            f"{cache['token_share']:.1%}, latency median {statistics.median(seconds):.2f} s, p90 {p90:.2f} s, "
            f"wall {wall:.1f} s")


def deploy(spec, replicas: int, routing: str, cpus: float) -> float:
    """serve.run of a fresh application; seconds until it is ready."""
    started = time.perf_counter()
    serve.run(build_app(spec, replicas, routing=routing, ray_actor_options={"num_cpus": cpus / replicas}),
              name=APP, route_prefix="/")
    return time.perf_counter() - started


def phase(url: str, name: str, requests: list[tuple[int, dict]], concurrency: int) -> str:
    before = health(url)
    results, wall = run_load(url, requests, concurrency)
    return latency_line(name, results, wall, cache_figures(before, health(url)))


def kill_phase(url: str, requests: list[tuple[int, dict]], concurrency: int, replicas: int) -> list[str]:
    """The load with a busy replica killed once a quarter of the requests are answered; 503s retried."""
    switch = KillSwitch(len(requests) // 4)
    results, wall = run_load(url, requests, concurrency, retries=5, observer=switch)
    if switch.victim is None:
        return ["kill: no replica had a request in flight after a quarter of the load; nothing killed"]
    back = wait_for_replacement(url, switch.victim, replicas)
    first, final = counts(r["first"] for r in results), counts(r["status"] for r in results)
    return [f"kill: replica {switch.victim} killed after {switch.done_at_kill} of {len(requests)} requests were "
            f"answered, with {switch.victim_in_flight} of its requests in flight; first attempts {first}; after "
            f"retrying 503s {final} ({sum(r['tries'] > 1 for r in results)} retried); wall {wall:.1f} s",
            f"kill: Ray ran a replacement replica {back - switch.at:.1f} s after the kill"]


def wait_for_replacement(url: str, victim: str, replicas: int, timeout: float = 600) -> float:
    """perf_counter() when /health shows `replicas` replicas again, none of them `victim`."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        ids = {replica["replica"] for replica in health(url)["replicas"]}
        if len(ids) >= replicas and victim not in ids:
            return time.perf_counter()
        time.sleep(0.5)
    raise SystemExit(f"no replacement for replica {victim} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model directory or embedded id (default: embedded)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--contexts", type=int, default=4)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=4)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # shut Serve and Ray down on the way out
    lines = run(args)
    if args.out:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> list[str]:
    cpus = os.cpu_count() or 1
    bodies = load(args.contexts, args.queries)
    spec = ReplicaSpec(args.model, {}, ServerSettings(model_name=MODEL_NAME, max_prompt_tokens=1024, max_tokens=64))
    url, lines = f"http://127.0.0.1:{args.port}", []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    say(f"# benchmarks/ray_affinity.py {' '.join(sys.argv[1:])}: {args.replicas} replicas of "
        f"{args.model or 'the embedded model'} on Ray {ray.__version__} ({cpus} CPUs), {args.contexts} contexts x "
        f"{args.queries} queries, {args.concurrency} clients, {args.new_tokens} new tokens")
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    try:
        say(f"affinity: deployed in {deploy(spec, args.replicas, 'affinity', cpus):.1f} s")
        say(phase(url, "affinity", interleaved(bodies, args.new_tokens), args.concurrency))
        for line in kill_phase(url, interleaved(bodies, args.new_tokens, shift=1), args.concurrency, args.replicas):
            say(line)
        serve.delete(APP)
        say(f"random: deployed in {deploy(spec, args.replicas, 'random', cpus):.1f} s")
        say(phase(url, "random", interleaved(bodies, args.new_tokens), args.concurrency))
    finally:
        serve.shutdown()
        ray.shutdown()
    return lines


if __name__ == "__main__":
    main()
