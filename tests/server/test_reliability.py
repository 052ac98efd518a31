"""Hostile and careless clients: no 5xx, no hang, one bad row never fails another, abandoned work is dropped.

A real uvicorn server on a tiny model (fast to decode) with the probe's limits (max_batch 8, max_waiting 16).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from attnsteer import Steerer, load_model
from attnsteer.server import ServerSettings
from attnsteer.server.schemas import MAX_EMPHASIS_ENTRIES
from tests.server.conftest import live_server

PROMPT = "The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome."
LONG_TOKENS = 3000  # a generation that takes seconds on the tiny model
SETTINGS = ServerSettings(model_name="tiny", max_batch=8, max_waiting=16, max_tokens=LONG_TOKENS,
                          max_prompt_tokens=200, max_body_bytes=2 * 1024 * 1024, batch_wait_s=0.01)


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    steerer = Steerer(*load_model(str(tiny_model_dir("llama"))), heads="1")
    with live_server(steerer, SETTINGS) as live:
        yield live


def post(server, path: str, body: object = None, raw: bytes | None = None, timeout: float = 120):
    """(status, JSON body or None); an abandoned request (timeout) gives (None, None)."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (TimeoutError, urllib.error.URLError):
        return None, None


def completion(**change) -> dict:
    return {"model": "tiny", "prompt": PROMPT, "max_tokens": 4, **change}


def health_seconds(server) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(server.url + "/health", timeout=30) as response:
        assert response.status == 200
    return time.perf_counter() - started


# ----- 1. one bad row never fails its batch ----------------------------------------------------------------------
def test_sampling_extremes_are_refused_or_greedy_and_other_rows_complete(server):
    greedy = post(server, "/v1/completions", completion())[1]["choices"][0]["text"]
    steered = post(server, "/v1/completions", completion(emphasis=["Rome"]))[1]["choices"][0]["text"]
    results: dict[str, tuple] = {}
    requests = {"plain": completion(), "steered": completion(emphasis=["Rome"]),
                "tiny temperature": completion(temperature=1e-300, seed=1),
                "huge seed": completion(temperature=0.7, seed=2**70),
                "negative seed": completion(temperature=0.7, seed=-1)}
    threads = [threading.Thread(target=lambda k=k, b=b: results.__setitem__(k, post(server, "/v1/completions", b)))
               for k, b in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["plain"] == (200, results["plain"][1]) and results["plain"][1]["choices"][0]["text"] == greedy
    assert results["steered"][0] == 200 and results["steered"][1]["choices"][0]["text"] == steered
    status, body = results["tiny temperature"]
    assert status == 200 and body["choices"][0]["text"] == greedy  # a vanishing temperature samples the argmax
    for name in ("huge seed", "negative seed"):
        status, body = results[name]
        assert status == 400 and body["error"]["param"] == "seed", body


def test_a_row_whose_sampling_fails_ends_alone(tiny_model_dir, tokenizer, monkeypatch):
    """Below the schema: a row that fails in the decoder gets its own Failed; the batch's other rows finish."""
    from attnsteer.server import engine
    from attnsteer.server.engine import BatchGenerator, Failed, Finished, GenerationJob
    from attnsteer.server.prompts import PreparedPrompt

    model, _ = load_model(str(tiny_model_dir("llama")))
    ids = tokenizer(PROMPT)["input_ids"]
    prompt = PreparedPrompt(PROMPT, ids, [False] * len(ids), None)
    events: dict[str, list] = {"greedy": [], "sampled": [], "bad seed": []}
    real_sample = engine.sample_top_p

    def failing_sample(logits, temperature, top_p, generator):
        if temperature == 0.5:
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return real_sample(logits, temperature, top_p, generator)

    monkeypatch.setattr(engine, "sample_top_p", failing_sample)
    jobs = [GenerationJob(prompt, 5, events["greedy"].append),
            GenerationJob(prompt, 5, events["sampled"].append, temperature=0.5, seed=3),
            GenerationJob(prompt, 5, events["bad seed"].append, temperature=0.9, seed=2**70)]
    BatchGenerator(model, tokenizer).run(jobs)
    assert isinstance(events["greedy"][-1], Finished) and events["greedy"][-1].completion_tokens == 5
    assert [type(e) for e in events["sampled"]] == [Failed] and "inf, nan" in events["sampled"][0].message
    assert [type(e) for e in events["bad seed"]] == [Failed] and "0..2**63-1" in events["bad seed"][0].message


# ----- 2. one request cannot freeze the server ---------------------------------------------------------------------
def test_huge_prompt_with_many_emphasis_entries_is_refused_while_health_stays_fast(server):
    body = json.dumps(completion(prompt="a " * 500_000, max_tokens=1, emphasis=["a"] * 10_000)).encode()
    health_times: list[float] = []
    stop = threading.Event()

    def watch_health():
        while not stop.is_set():
            health_times.append(health_seconds(server))

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:
        status, answer = post(server, "/v1/completions", raw=body)
        status_n100, answer_n100 = post(server, "/v1/completions",
                                        completion(prompt="a " * 500_000, max_tokens=1, emphasis=["a"] * 10))
    finally:
        stop.set()
        watcher.join()
    assert status == 400 and answer["error"]["param"] == "emphasis"
    assert "not 10000" in answer["error"]["message"]
    assert len(answer["error"]["message"]) < 1000  # not one reason per entry (was 500 kB for 10,000 entries)
    assert status_n100 == 400 and answer_n100["error"]["param"] == "prompt"
    assert "1000000 characters" in answer_n100["error"]["message"]
    assert health_times and max(health_times) < 5  # was 11.8 s (N=100) and minutes (N=10,000) on the event loop


def test_more_emphasis_entries_than_allowed_for_one_prompt(server):
    status, body = post(server, "/v1/completions", completion(emphasis=["Rome"] * (MAX_EMPHASIS_ENTRIES + 1)))
    assert status == 400 and body["error"]["param"] == "emphasis"
    assert f"at most {MAX_EMPHASIS_ENTRIES}" in body["error"]["message"]


def test_a_body_over_the_limit_is_413_before_parsing(server):
    # Only the headers and the body's first bytes are sent: the answer must come from the declared length alone.
    # (Sending all 3 MB races the server's early answer: it closes with the body unread, and the reset that
    # follows can drop the 413 before the client reads it.)
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/completions")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(3 * 1024 * 1024))
    connection.endheaders(b'{"prompt": "aaaa')
    response = connection.getresponse()
    status, body = response.status, json.loads(response.read())
    connection.close()
    assert status == 413 and "larger than this server's limit" in body["error"]["message"]
    assert post(server, "/v1/completions", completion())[0] == 200


# ----- 3. abandoned non-streaming requests stop generating -------------------------------------------------------
def test_abandoned_non_streaming_requests_are_dropped(server):
    started = time.perf_counter()
    status, _ = post(server, "/v1/completions", completion(max_tokens=LONG_TOKENS, prompt="Paris Paris"))
    long_alone = time.perf_counter() - started
    assert status == 200 and long_alone > 1.0, long_alone  # the generation the clients abandon takes a while
    abandoned = [threading.Thread(target=post, args=(server, "/v1/completions",
                                                      completion(max_tokens=LONG_TOKENS, prompt="Paris Paris")),
                                  kwargs={"timeout": 0.3}) for _ in range(5)]
    for thread in abandoned:
        thread.start()
    for thread in abandoned:
        thread.join()
    started = time.perf_counter()
    status, body = post(server, "/v1/completions", completion(max_tokens=2), timeout=60)
    after = time.perf_counter() - started
    assert status == 200 and body["usage"]["completion_tokens"] == 2
    assert after < long_alone / 2, (after, long_alone)  # not queued behind five abandoned long rows


# ----- 4-7. bad text, impossible requests, control tokens, NaN ----------------------------------------------------
@pytest.mark.parametrize(("path", "raw", "param"), [
    ("/v1/completions", b'{"model": "tiny", "prompt": "abc \\ud800 def"}', "prompt"),
    ("/v1/chat/completions", b'{"model": "tiny", "messages": [{"role": "user", "content": "abc \\ud800"}]}',
     "messages[0].content"),
    ("/v1/attention", b'{"prompt": "abc \\udfff def", "emphasis": ["abc"]}', "prompt"),
    ("/v1/completions", b'{"model": "tiny", "prompt": "abc def", "emphasis": ["\\ud800"]}', "emphasis[0]"),
], ids=["completion", "chat", "attention", "emphasis"])
def test_lone_surrogates_are_a_400_naming_the_field(server, path, raw, param):
    status, body = post(server, path, raw=raw)
    assert status == 400, body
    assert body["error"]["param"] == param and "not valid Unicode" in body["error"]["message"]


def test_more_rows_than_the_queue_holds_is_a_400_not_retry_later(server):
    status, body = post(server, "/v1/completions", completion(prompt=[PROMPT] * 17))
    assert status == 400 and body["error"]["param"] == "prompt"
    assert "at most 16" in body["error"]["message"]
    assert post(server, "/v1/completions", completion(prompt=[PROMPT] * 16, max_tokens=1))[0] == 200


def test_control_tokens_in_a_prompt_are_text(server, tokenizer):
    status, body = post(server, "/v1/completions", completion(prompt="<eos><bos> Rome is", emphasis=["<eos>"]))
    assert status == 200, body
    as_text = tokenizer("<eos><bos> Rome is", split_special_tokens=True)["input_ids"]
    assert body["usage"]["prompt_tokens"] == len(as_text) > len(tokenizer("<eos><bos> Rome is")["input_ids"])


@pytest.mark.parametrize(("field", "raw"), [("alpha", b'"emphasis": ["Rome"], "alpha": NaN'),
                                            ("temperature", b'"temperature": NaN'),
                                            ("top_p", b'"top_p": Infinity')])
def test_non_finite_numbers_say_finite(server, field, raw):
    status, body = post(server, "/v1/completions", raw=b'{"model": "tiny", "prompt": "' + PROMPT.encode() + b'", '
                        + raw + b"}")
    assert status == 400 and body["error"]["param"] == field
    assert "finite number" in body["error"]["message"]


# ----- the fuzz list: every hostile body answered below 500, and the server lives on -------------------------------
FUZZ = [
    b"", b"null", b"[]", b"0", b'"text"', b"{", b'{"model": "tiny"}', b'{"prompt": "x"}',
    b'{"model": 1, "prompt": "x"}', b'{"model": "tiny", "prompt": 5}', b'{"model": "tiny", "prompt": []}',
    b'{"model": "tiny", "prompt": [1, 2]}', b'{"model": "tiny", "prompt": [[1]]}', b'{"model": "tiny", "prompt": ""}',
    b'{"model": "tiny", "prompt": "x", "max_tokens": -1}', b'{"model": "tiny", "prompt": "x", "max_tokens": 1e9}',
    b'{"model": "tiny", "prompt": "x", "max_tokens": 99999999999999999999999}',
    b'{"model": "tiny", "prompt": "x", "temperature": -1}', b'{"model": "tiny", "prompt": "x", "temperature": 1e308}',
    b'{"model": "tiny", "prompt": "x", "temperature": 5e-324}', b'{"model": "tiny", "prompt": "x", "top_p": 0}',
    b'{"model": "tiny", "prompt": "x", "top_p": 1e-300, "temperature": 1}',
    b'{"model": "tiny", "prompt": "x", "seed": 1.5}', b'{"model": "tiny", "prompt": "x", "seed": "1"}',
    b'{"model": "tiny", "prompt": "x", "seed": 18446744073709551616, "temperature": 1}',
    b'{"model": "tiny", "prompt": "x", "stop": ""}', b'{"model": "tiny", "prompt": "x", "stop": ["a","b","c","d","e"]}',
    b'{"model": "tiny", "prompt": "x", "stop": [1]}', b'{"model": "tiny", "prompt": "x", "n": 3}',
    b'{"model": "tiny", "prompt": "x", "echo": true}', b'{"model": "tiny", "prompt": "x", "logprobs": 5}',
    b'{"model": "tiny", "prompt": "x", "emphasis": "x"}', b'{"model": "tiny", "prompt": "x", "emphasis": [{}]}',
    b'{"model": "tiny", "prompt": "x", "emphasis": [{"start": -1, "end": 1}]}',
    b'{"model": "tiny", "prompt": "x", "emphasis": [{"start": 1, "end": 0}]}',
    b'{"model": "tiny", "prompt": "x", "emphasis": [{"start": 0, "end": 1e30}]}',
    b'{"model": "tiny", "prompt": "x", "emphasis": [""]}', b'{"model": "tiny", "prompt": "x", "emphasis": [null]}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": "all"}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": "-1"}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": "1.99999999999999999999"}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": {"a": [1]}}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": {"1": "all"}}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "heads": []}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "alpha": 1e-320}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "alpha": true}',
    b'{"model": "tiny", "prompt": "x y", "emphasis": ["x"], "mode": null}',
    b'{"model": "tiny", "prompt": "**x** y", "emphasis_markup": true, "emphasis": ["y"]}',
    b'{"model": "tiny", "prompt": "***", "emphasis_markup": true}',
    b'{"model": "tiny", "prompt": "x", "stream": "yes"}',
    b'{"model": "tiny", "prompt": "x", "stream_options": {"include_usage": 1}}',
    b'{"model": "tiny", "messages": "hi"}', b'{"model": "tiny", "messages": [{"role": "user"}]}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,'
    b' "max_completion_tokens": 1}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": "<|im_end|><eos>"}], "max_tokens": 1}',
    b'{"model": "tiny", "prompt": "' + "\u00e9\u4e2d\U0001f600".encode() + b'", "max_tokens": 1}',
    b'{"model": "tiny", "prompt": "x\\u0000y", "max_tokens": 1}',
    b'{"model": "tiny", "prompt": "x", "max_tokens": 1, "user": "\\udc00"}',
    b'{"model": "tiny", "prompt": "' + b"[" * 10_000 + b'", "max_tokens": 1}',
    b"[" * 100_000, b'{"a": ' * 5_000,
]


def test_fuzz_list_gets_no_5xx_and_the_server_lives(server):
    for raw in FUZZ:
        path = "/v1/completions" if b"messages" not in raw else "/v1/chat/completions"
        request = urllib.request.Request(server.url + path, data=raw, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status = response.status  # (a lax "stream": "yes" streams: the body need not be JSON)
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read())
            assert status < 500 and body["error"]["message"], (raw[:80], status, body)
        assert status in (200, 400, 404, 413), raw[:80]
    assert post(server, "/v1/completions", completion())[0] == 200
