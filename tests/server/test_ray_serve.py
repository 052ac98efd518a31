"""Replicas on Ray Serve with context affinity (`attnsteer.server.cluster`, issue 16).

The affinity key, the replica ranking, the in-process bridge and `--replicas` without Ray need no Ray. The rest
starts a real local Ray (2 CPUs, a small object store, no dashboard) serving 2 replicas of a tiny Llama through
Ray's HTTP proxy, once for the module (`launch.start_cluster`, as `attnsteer serve --replicas 2` does), and
compares every answer with a single process's (`live_server` on the same model and settings).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
from typer.testing import CliRunner

from attnsteer import Steerer, load_model
from attnsteer.cli.main import app as cli
from attnsteer.server import ServerSettings
from attnsteer.server.cluster.affinity import AFFINITY_CHARS, affinity_key, rank_replicas
from attnsteer.server.cluster.bridge import ForwardedRequest, ResponseStart, call_app
from tests.server.conftest import free_port, live_server

COMPLETIONS, CHAT = "/v1/completions", "/v1/chat/completions"
# every request of the mixed load may land on one replica: 9 rows fit (4 running, up to 12 waiting)
SETTINGS = ServerSettings(model_name="tiny", max_batch=4, max_waiting=12, max_tokens=3000, batch_wait_s=0.01)
CONTEXTS = [  # four contexts longer than AFFINITY_CHARS, distinct from their first words
    "Paris is the capital of France and the home of the Eiffel Tower, which was built in 1889. " * 4,
    "She is a nurse who works at the hospital, where she looks after the patients every night. " * 4,
    "The city of Rome was, according to the story, founded by two brothers beside the river. " * 4,
    "A tower of iron was located in the city, and people came from the whole world to see it. " * 4,
]
QUESTIONS = [" Where?", " Who?", " When?", " Why?"]


# ----- the affinity key and the ranking (no Ray) -----------------------------------------------------------------
def key(prompt: str, path: str = COMPLETIONS, **fields) -> str | None:
    return affinity_key(path, json.dumps({"model": "tiny", "prompt": prompt, **fields}).encode())


def test_queries_on_one_context_share_a_key_and_other_contexts_do_not():
    assert all(len(context) > AFFINITY_CHARS for context in CONTEXTS)
    keys = [{key(context + question) for question in QUESTIONS} for context in CONTEXTS]
    assert all(len(one) == 1 for one in keys) and len(set.union(*keys)) == len(CONTEXTS)
    assert key(CONTEXTS[0][:40] + " Where?") != key(CONTEXTS[0][:40] + " Who?")  # a short context: no shared key


def test_the_key_follows_the_emphasis_and_steering_that_decide_the_prefix():
    prompt, early = CONTEXTS[0] + " Where?", {"start": 0, "end": 5}
    plain = key(prompt)
    assert key(prompt, method="pasta", alpha=0.1) == plain == key(prompt, emphasis=[])  # not emphasised: plain
    steered = key(prompt, emphasis=[early])
    assert steered not in (plain, key(prompt, emphasis=["Paris"], method="instaboost"))
    assert key(prompt, emphasis=["Paris"]) == steered  # the same span, as a substring
    # emphasis in the question (past the key's characters) keeps the context's steered replica
    assert key(CONTEXTS[0] + " Where?", emphasis=["Where"]) == key(CONTEXTS[0] + " Who?", emphasis=["Who"])
    assert key(prompt, emphasis=[early], alpha=0.1) != steered


def test_chat_keys_follow_the_leading_messages_and_bad_bodies_have_none():
    def chat(question: str, **fields) -> str | None:
        messages = [{"role": "system", "content": CONTEXTS[1]}, {"role": "user", "content": question}]
        return affinity_key(CHAT, json.dumps({"model": "tiny", "messages": messages, **fields}).encode())

    assert chat("Who?") == chat("Where?") != chat("Who?", emphasis=["nurse"])
    assert chat("Who?", emphasis=["nurse"]) == affinity_key(CHAT, json.dumps({"model": "tiny", "messages": [
        {"role": "system", "content": CONTEXTS[1], "emphasis": ["nurse"]}, {"role": "user", "content": "x"}]}).encode())
    for body in [b"{not json", b"[1, 2]", b'{"prompt": 3}', b'{"messages": "hi"}', b"\xff\xfe"]:
        assert affinity_key(COMPLETIONS, body) is None and affinity_key(CHAT, body) is None
    assert affinity_key("/v1/models", b"{}") is None


def test_rendezvous_ranking_is_stable_balanced_and_moves_only_a_dead_replicas_keys():
    replicas = ["a1", "b2", "c3"]
    keys = [f"key{i}" for i in range(600)]
    first = {k: rank_replicas(k, replicas)[0] for k in keys}
    assert all(sorted(rank_replicas(k, replicas)) == replicas for k in keys[:20])
    assert all(rank_replicas(k, list(reversed(replicas)))[0] == first[k] for k in keys)  # order-free
    assert all(150 < list(first.values()).count(r) < 250 for r in replicas)
    survivors = ["a1", "c3"]
    assert all(rank_replicas(k, survivors)[0] == first[k] for k in keys if first[k] != "b2")


def test_the_router_hashes_ranks_so_a_replacement_inherits_the_dead_replicas_contexts():
    pytest.importorskip("ray.serve", reason="the cluster extra is not installed (pip install 'attnsteer[cluster]')")
    from attnsteer.server.cluster.router import ContextAffinityRouter

    def replica(unique_id: str, rank: int | None) -> SimpleNamespace:
        return SimpleNamespace(replica_id=SimpleNamespace(unique_id=unique_id),
                               replica_metadata={} if rank is None else {"rank": rank})

    def choose(replicas: list, key: str | None, policy: str = "affinity") -> list[list[str]]:
        request = SimpleNamespace(kwargs={"affinity_key": key}, routing_context=SimpleNamespace(should_backoff=False))
        ranks = asyncio.run(ContextAffinityRouter.choose_replicas(SimpleNamespace(_policy=policy), replicas, request))
        assert request.routing_context.should_backoff
        return [[r.replica_id.unique_id for r in rank] for rank in ranks]

    before, after = [replica("a", 0), replica("b", 1)], [replica("a", 0), replica("c", 1)]
    keys = [f"context {i}" for i in range(40)]
    owners = {k: choose(before, k)[0][0] for k in keys}
    assert {len(choose(before, k)) for k in keys} == {2} and set(owners.values()) == {"a", "b"}
    assert all(choose(after, k)[0][0] == {"a": "a", "b": "c"}[owners[k]] for k in keys)
    assert choose(before, None) == [["a", "b"]]  # no key: Ray's least-loaded choice among all
    assert choose([replica("d", 0), replica("a", 0)], "x") == [["a"], ["d"]]  # one rank twice (an update): both
    assert {choose([replica("a", None), replica("b", None)], k)[0][0] for k in keys} == {"a", "b"}  # ids as slots
    assert sorted(sum(choose(before, "x", policy="random"), [])) == ["a", "b"]


# ----- the bridge: a request through an ASGI app in-process (no Ray) ----------------------------------------------
def test_the_bridge_streams_chunks_and_tells_an_abandoned_app_the_client_left():
    seen: list[str] = []

    async def endpoint(request):
        async def chunks():
            try:
                for index in range(1000):
                    yield f"{index},"
                    await asyncio.sleep(0.005)
            finally:  # Starlette stops the stream when the client disconnects
                seen.append(f"stopped after {index}")

        return StreamingResponse(chunks(), headers={"x-demo": "1"}, media_type="text/plain")

    app = Starlette(routes=[Route("/count", endpoint, methods=["POST"])])

    async def read(limit: int) -> list:
        pieces = []
        async with aclosing(call_app(app, ForwardedRequest("POST", "/count", body=b"{}"))) as response:
            async for piece in response:  # a reader that stops early closes the response, as Ray's cancel does
                pieces.append(piece)
                if len(pieces) == limit:
                    break
        return pieces

    pieces = asyncio.run(read(limit=4))
    assert isinstance(pieces[0], ResponseStart) and pieces[0].status == 200 and pieces[0].header("x-demo") == "1"
    assert pieces[1:] == [b"0,", b"1,", b"2,"] and len(seen) == 1 and int(seen[0].split()[-1]) < 10


def test_replicas_without_ray_is_one_line_and_exit_2(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr("attnsteer.models.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_model_dir("llama")), "--replicas", "2"])
    assert result.exit_code == 2, result.output
    assert "--replicas needs Ray Serve: pip install 'attnsteer[cluster]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_replicas_of_a_missing_model_directory_is_one_line_before_ray_starts(tmp_path):
    pytest.importorskip("ray.serve", reason="the cluster extra is not installed (pip install 'attnsteer[cluster]')")
    import ray

    result = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "absent"), "--replicas", "2"])
    assert result.exit_code == 2 and "no such directory" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not ray.is_initialized()


# ----- a real local Ray cluster: 2 replicas of a tiny model behind Ray's HTTP proxy -------------------------------
@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)

    @property
    def replica(self) -> str | None:
        return self.headers.get("x-attnsteer-replica")


def send(url: str, path: str, body: object = None, raw: bytes | None = None, timeout: float = 120) -> Reply:
    """A POST (GET when there is no body) whose failure statuses are returned, not raised."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), {k.lower(): v for k, v in response.headers.items()})
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), {k.lower(): v for k, v in error.headers.items()})


@dataclass
class Servers:
    cluster: str  # Ray's proxy
    single: str  # one process on the same model and settings


@pytest.fixture(scope="module")
def servers(tiny_model_dir) -> Iterator[Servers]:
    pytest.importorskip("ray.serve", reason="the cluster extra is not installed (pip install 'attnsteer[cluster]')")
    import ray

    from attnsteer.server.cluster.deployments import ReplicaSpec
    from attnsteer.server.cluster.launch import start_cluster, stop_cluster

    model = str(tiny_model_dir("llama"))
    ray.init(address="local", num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    port = free_port()
    try:
        start_cluster(ReplicaSpec(model, {"heads": "1"}, SETTINGS), 2, "127.0.0.1", port, num_cpus=2)
        with live_server(Steerer(*load_model(model), heads="1"), SETTINGS) as single:
            yield Servers(f"http://127.0.0.1:{port}", single.url)
    finally:
        stop_cluster()


def health(url: str) -> dict:
    return send(url, "/health").json()


def completion(prompt: str, max_tokens: int = 4, **fields) -> dict:
    return {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, **fields}


MIXED = [
    completion(CONTEXTS[0] + " Where?", 6),
    completion(CONTEXTS[0] + " Who?", 3, emphasis=["Eiffel Tower"]),
    completion(CONTEXTS[1] + " Who?", 9, emphasis=["nurse"], method="instaboost", boost=4),
    completion(CONTEXTS[2] + " When?", 5, emphasis=["brothers"],
               steering={"method": "spotlight", "target": 0.3, "granularity": "head"}),
    completion(CONTEXTS[3], 4, stream=True, emphasis=["iron"]),
    completion([CONTEXTS[2], CONTEXTS[3]], 3),
    {"model": "tiny", "messages": [{"role": "system", "content": CONTEXTS[1], "emphasis": ["nurse"]},
                                   {"role": "user", "content": "Who?"}], "max_tokens": 5},
    {"model": "tiny", "messages": [{"role": "user", "content": CONTEXTS[0]}], "max_tokens": 4, "stream": True},
]


def answer(reply: Reply) -> list[str]:
    """The generated texts of a reply (completions, chat, or a stream's chunks joined)."""
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in reply.body.decode().splitlines()
                  if line.startswith("data: {")]
        return ["".join(choice.get("text") or choice.get("delta", {}).get("content") or ""
                        for event in events for choice in event["choices"])]
    return [choice.get("text", choice.get("message", {}).get("content")) for choice in reply.json()["choices"]]


def test_a_mixed_load_is_answered_as_one_process_answers_it(servers):
    alone = [answer(send(servers.single, CHAT if "messages" in body else COMPLETIONS, body)) for body in MIXED]
    replies: list[Reply | None] = [None] * len(MIXED)

    def run(index: int) -> None:
        replies[index] = send(servers.cluster, CHAT if "messages" in MIXED[index] else COMPLETIONS, MIXED[index])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(MIXED))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [reply.status for reply in replies] == [200] * len(MIXED)
    assert [answer(reply) for reply in replies] == alone
    assert {reply.replica for reply in replies} <= {r["replica"] for r in health(servers.cluster)["replicas"]}


BAD = [
    (COMPLETIONS, completion("hello", colour="red")),
    (COMPLETIONS, completion("hello", method="pastaa", emphasis=["hello"])),
    (COMPLETIONS, completion("hello", emphasis=["absent"])),
    (COMPLETIONS, completion("   ")),
    (COMPLETIONS, {"model": "other", "prompt": "hello"}),
    (COMPLETIONS, completion("hello", max_tokens=5000)),
    (CHAT, {"model": "tiny", "messages": []}),
]


def test_bad_input_gets_the_same_openai_error_as_one_process(servers):
    for path, body in BAD:
        alone, cluster = send(servers.single, path, body), send(servers.cluster, path, body)
        assert (cluster.status, cluster.json()) == (alone.status, alone.json()), body
        assert cluster.status in (400, 404) and set(cluster.json()["error"]) == {"message", "type", "param", "code"}
    malformed = send(servers.cluster, COMPLETIONS, raw=b'{"model": "tiny", "prompt": ')
    assert malformed.status == 400 and malformed.json()["error"]["message"].startswith("malformed JSON body")
    too_large = send(servers.cluster, COMPLETIONS, raw=b" " * (SETTINGS.max_body_bytes + 1))
    assert too_large.status == 413 and too_large.json()["error"]["type"] == "invalid_request_error"


def reuse_hit_rate(replicas_of: dict[int, list[str]]) -> float:
    """Share of the queries after each context's first whose replica had served that context before."""
    reuses = [replica in served[:index] for served in replicas_of.values()
              for index, replica in enumerate(served) if index > 0]
    return sum(reuses) / len(reuses)


def random_hit_rate(contexts: int, queries: int, replicas: int, trials: int = 2000) -> float:
    """`reuse_hit_rate` of a router choosing uniformly at random (simulated, seeded)."""
    chance = random.Random(0)
    rates = [reuse_hit_rate({c: [str(chance.randrange(replicas)) for _ in range(queries)] for c in range(contexts)})
             for _ in range(trials)]
    return sum(rates) / trials


def test_queries_on_a_context_go_to_the_replica_holding_its_cache(servers):
    before = health(servers.cluster)["prefix_cache"]
    served: dict[int, list[str]] = {c: [] for c in range(len(CONTEXTS))}
    for question in QUESTIONS:  # the contexts interleaved, as independent clients would send them
        for c, context in enumerate(CONTEXTS):
            reply = send(servers.cluster, COMPLETIONS, completion(context + question, 2, emphasis=[context[:30]]))
            assert reply.status == 200
            served[c].append(reply.replica)
    after = health(servers.cluster)["prefix_cache"]
    affinity, baseline = reuse_hit_rate(served), random_hit_rate(len(CONTEXTS), len(QUESTIONS), 2)
    assert affinity >= 0.85 > baseline + 0.1, (affinity, baseline, served)
    assert all(len(set(replicas)) == 1 for replicas in served.values()), served
    # each replica's steered prefix cache really served the reuses: one hit per query after a context's first
    reuses = len(CONTEXTS) * (len(QUESTIONS) - 1)
    assert after["hits"] - before["hits"] == reuses and after["misses"] - before["misses"] == len(CONTEXTS)


def first_line(url: str, body: dict) -> Reply:
    """A streaming request read up to its first line, then dropped (the client leaves; its rows are cancelled)."""
    request = urllib.request.Request(url + COMPLETIONS, data=json.dumps({**body, "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.readline(), {k.lower(): v for k, v in response.headers.items()})
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), {k.lower(): v for k, v in error.headers.items()})


def test_a_full_replica_answers_429_with_retry_after(servers):
    body = completion(CONTEXTS[2] + " busy", 2000)  # one context: one replica, 4 rows running + 12 waiting at most
    replies: list[Reply] = []
    threads = [threading.Thread(target=lambda: replies.append(first_line(servers.cluster, body))) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    refused = [reply for reply in replies if reply.status == 429]
    assert sorted({reply.status for reply in replies}) == [200, 429] and len(replies) == 24
    assert all(reply.headers["retry-after"] == "1" and json.loads(reply.body)["error"]["type"] == "rate_limit_error"
               for reply in refused)
    assert all(reply.body.startswith(b"data: {") for reply in replies if reply.status == 200)
    assert len({reply.replica for reply in replies}) == 1


def send_together(url: str, bodies: dict[str, dict]) -> tuple[list[threading.Thread], dict[str, Reply]]:
    """Start one thread per body (POSTed to completions); the replies land in the dict under the body's name."""
    replies: dict[str, Reply] = {}

    def run(name: str) -> None:
        replies[name] = send(url, COMPLETIONS, bodies[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in bodies]
    for thread in threads:
        thread.start()
    return threads, replies


def wait_for_replacement(url: str, victim: str, timeout: float = 120) -> dict:
    """/health once it shows two replicas again, neither of them `victim`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = health(url)
        ids = {replica["replica"] for replica in state["replicas"]}
        if len(ids) == 2 and victim not in ids and state["status"] == "ok":
            return state
        time.sleep(1)
    raise AssertionError(f"Ray did not bring a second replica back within {timeout} s: {state}")


def test_a_killed_replica_fails_its_requests_cleanly_and_ray_brings_it_back(servers):
    import ray

    victim = send(servers.cluster, COMPLETIONS, completion(CONTEXTS[0] + " warm", 1)).replica
    other = next(c for c in CONTEXTS[1:] if send(servers.cluster, COMPLETIONS, completion(c, 1)).replica != victim)
    threads, replies = send_together(servers.cluster, {
        "long": completion(CONTEXTS[0] + " long", 3000), "stream": completion(CONTEXTS[0] + " s", 3000, stream=True),
        "other": completion(other + " other", 40)})
    time.sleep(1.5)
    ray.kill(ray.get_actor(f"SERVE_REPLICA::attnsteer#SteeredReplica#{victim}", namespace="serve"), no_restart=True)
    for thread in threads:
        thread.join(timeout=60)
    long, stream = replies["long"], replies["stream"]
    assert long.status == 503 and long.headers["retry-after"] == "1"
    assert long.json()["error"]["code"] == "replica_unavailable"
    assert stream.status == 200 and b'"code": "replica_unavailable"' in stream.body and b"[DONE]" not in stream.body
    assert replies["other"].status == 200 and replies["other"].replica != victim
    after = send(servers.cluster, COMPLETIONS, completion(CONTEXTS[0] + " after", 2))  # its context moves over
    assert after.status == 200 and after.replica == replies["other"].replica
    state = wait_for_replacement(servers.cluster, victim)
    # the newcomer inherits the dead replica's rank, so its contexts come back and the survivor keeps its own
    newcomer = next(replica["replica"] for replica in state["replicas"] if replica["replica"] != after.replica)
    assert send(servers.cluster, COMPLETIONS, completion(CONTEXTS[0] + " back", 1)).replica == newcomer
    assert send(servers.cluster, COMPLETIONS, completion(other + " kept", 1)).replica == after.replica
