"""Continuous batching: rows join the running batch between decode steps and leave when done.

A row that joins mid-decode reads exactly as it reads alone (same greedy text, same logits at every step), for
plain rows and rows steered by PASTA, InstABoost and Spotlight mixed in one batch, on GQA and sliding-window
models; short rows leave early and their slots are reused; cancellation, shutdown, back-pressure and per-row
failures behave as in static batching, which stays available (`batching="static"`).
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from attnsteer import Steerer
from attnsteer.context.prefix_cache import prefill as context_prefill
from attnsteer.server import ServerSettings
from attnsteer.server.batching import QueueFullError, WaitingRows
from attnsteer.server.engine import BatchGenerator, Failed, Finished, GenerationJob, TextDelta
from attnsteer.server.scheduler import ContinuousDecoder, ContinuousScheduler
from attnsteer.steering.methods import make_method
from tests.server.conftest import EIFFEL, NEW_FACT, live_server
from tests.server.test_engine import PROMPTS, prepared
from tests.tiny_models import tiny_model

EMPHASIS = [PROMPTS[0][1], PROMPTS[1][1], "nurse"]
LONG_TOKENS = 3000  # a generation that takes seconds on the tiny model


def steerings(model) -> list:
    """One row each: plain, PASTA (layer 1, exclude), InstABoost, Spotlight per head, Spotlight per layer."""
    return [None, make_method("pasta", model, heads="1", alpha=0.01).row(),
            make_method("instaboost", model, boost=20.0).row(),
            make_method("spotlight", model, target=0.6, granularity="head").row(),
            make_method("spotlight", model, target=0.6, granularity="layer").row()]


class Recorder:
    """Each job's events, and its next-token logits [vocab] after every step it ran in."""

    def __init__(self, decoder: ContinuousDecoder) -> None:
        self.decoder = decoder
        self.logits: dict[int, list[torch.Tensor]] = {}

    def run(self, jobs: list[GenerationJob], joins: dict[int, list[int]], steps: int = 60) -> list[int]:
        """Accept jobs[i] before step s for s, [i...] in joins; step until every job ended. The rows per step."""
        sizes = []
        for step in range(steps):
            self.decoder.accept([jobs[index] for index in joins.get(step, [])])
            self.decoder.step()
            for index, row in enumerate(self.decoder.batch.rows):
                self.logits.setdefault(id(row.job), []).append(self.decoder.batch.logits[index].clone())
            sizes.append(len(self.decoder.batch.rows))
            if step > max(joins) and not self.decoder.running:
                return sizes
        raise AssertionError("the rows did not end")


def jobs_for(rows, max_tokens: list[int]) -> tuple[list[GenerationJob], list[list]]:
    events = [[] for _ in rows]
    jobs = [GenerationJob(row, n, events[i].append) for i, (row, n) in enumerate(zip(rows, max_tokens, strict=True))]
    return jobs, events


def text_of(events: list) -> str:
    assert isinstance(events[-1], Finished), events[-1]
    return "".join(event.text for event in events if isinstance(event, TextDelta))


@pytest.mark.parametrize("architecture", ["llama", "mistral", "gemma3", "gemma2"])
def test_rows_joining_mid_decode_read_as_alone(architecture, tokenizer):
    """llama: GQA (4 query heads, 2 kv heads); mistral: sliding window 6 on every layer; gemma3: sliding and full
    layers; gemma2: eager attention with logit soft-capping. Prompts are longer than the window."""
    model = tiny_model(architecture)
    rows = [prepared(tokenizer, PROMPTS[i % 3][0], EMPHASIS[i % 3], steering)
            for i, steering in enumerate(steerings(model))]
    max_tokens = [12, 4, 9, 14, 3]
    alone_texts, alone_logits = [], []
    for row, n in zip(rows, max_tokens, strict=True):
        jobs, events = jobs_for([row], [n])
        recorder = Recorder(ContinuousDecoder(model, tokenizer))
        recorder.run(jobs, {0: [0]})
        alone_texts.append(text_of(events[0]))
        alone_logits.append(recorder.logits[id(jobs[0])])
        static_events = []
        BatchGenerator(model, tokenizer).run([GenerationJob(row, n, static_events.append)])
        assert text_of(static_events) == alone_texts[-1]  # alone, continuous = static
    jobs, events = jobs_for(rows, max_tokens)
    recorder = Recorder(ContinuousDecoder(model, tokenizer))
    sizes = recorder.run(jobs, {0: [0], 2: [1, 2], 4: [3], 7: [4]})
    assert [text_of(row_events) for row_events in events] == alone_texts
    for job, expected in zip(jobs, alone_logits, strict=True):
        torch.testing.assert_close(torch.stack(recorder.logits[id(job)]), torch.stack(expected), atol=2e-5, rtol=0)
    assert max(sizes) == 4 and sizes[:3] == [1, 1, 3]  # rows joined a running batch; the 4-token row left early


def test_steering_reaches_the_rows_of_a_mixed_batch(tokenizer):
    """The check above is not vacuous: every steered row reads differently from the same prompt unsteered."""
    model = tiny_model("llama")
    plain = [prepared(tokenizer, PROMPTS[0][0], PROMPTS[0][1], None)] * 4
    steered = [prepared(tokenizer, PROMPTS[0][0], PROMPTS[0][1], steering) for steering in steerings(model)[1:]]
    recorder = Recorder(ContinuousDecoder(model, tokenizer))
    jobs, _ = jobs_for(plain + steered, [3] * 8)
    recorder.run(jobs, {0: [0, 1, 2, 3], 1: [4, 5, 6, 7]})
    for plain_job, steered_job in zip(jobs[:4], jobs[4:], strict=True):
        difference = (recorder.logits[id(plain_job)][-1] - recorder.logits[id(steered_job)][-1]).abs().max()
        assert difference > 1e-3


def test_the_prefill_hook_is_called_per_row_and_its_failure_fails_that_row_only(tokenizer):
    model = tiny_model("llama")
    calls = []

    def prefill(model, row_steering, input_ids, emphasis):
        calls.append((tuple(input_ids.shape), tuple(emphasis.shape), emphasis.dtype, row_steering))
        if row_steering is None:
            raise RuntimeError("a bug in the prefix cache")
        return context_prefill(model, row_steering, input_ids, emphasis)

    steering = steerings(model)[1]
    rows = [prepared(tokenizer, PROMPTS[0][0], PROMPTS[0][1], steering), prepared(tokenizer, PROMPTS[1][0], None, None)]
    jobs, events = jobs_for(rows, [5, 5])
    decoder = ContinuousDecoder(model, tokenizer, prefill=prefill)
    Recorder(decoder).run(jobs, {0: [0, 1]})
    length = len(rows[0].input_ids)
    assert calls[0] == ((1, length), (1, length), torch.bool, steering)
    assert isinstance(events[0][-1], Finished) and events[0][-1].completion_tokens == 5
    assert [type(event) for event in events[1]] == [Failed] and "a bug in the prefix cache" in events[1][0].message
    assert decoder.counters.snapshot()["rows_failed"] == 1


def test_a_bad_seed_or_failing_sampling_ends_that_row_alone(tokenizer, monkeypatch):
    from attnsteer.server import engine

    real_sample = engine.sample_top_p

    def failing_sample(logits, temperature, top_p, generator):
        if temperature == 0.5:
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return real_sample(logits, temperature, top_p, generator)

    monkeypatch.setattr(engine, "sample_top_p", failing_sample)
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    events = {"greedy": [], "sampled": [], "bad seed": []}
    jobs = [GenerationJob(prompt, 5, events["greedy"].append),
            GenerationJob(prompt, 5, events["sampled"].append, temperature=0.5, seed=3),
            GenerationJob(prompt, 5, events["bad seed"].append, temperature=0.9, seed=2**70)]
    Recorder(ContinuousDecoder(tiny_model("llama"), tokenizer)).run(jobs, {0: [0], 1: [1, 2]})
    assert isinstance(events["greedy"][-1], Finished) and events["greedy"][-1].completion_tokens == 5
    assert [type(e) for e in events["sampled"]] == [Failed] and "inf, nan" in events["sampled"][0].message
    assert [type(e) for e in events["bad seed"]] == [Failed] and "0..2**63-1" in events["bad seed"][0].message


# ----- the worker: admission, leaving, cancellation, shutdown, back-pressure --------------------------------------
@pytest.fixture
def scheduler_on(tokenizer):
    """make(max_batch, max_waiting) -> a ContinuousScheduler on a tiny Llama; closed after the test."""
    made = []

    def make(max_batch: int = 2, max_waiting: int = 4) -> ContinuousScheduler:
        decoder = ContinuousDecoder(tiny_model("llama"), tokenizer)
        made.append(ContinuousScheduler(decoder, max_batch, max_waiting, 0.0, threading.Lock()))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.decoder.stop()
        scheduler.close()


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_short_rows_leave_early_and_their_slots_are_reused(scheduler_on, tokenizer):
    scheduler = scheduler_on(max_batch=2)
    ended: list[str] = []
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    jobs = [GenerationJob(prompt, n, lambda event, name=name: ended.append(name) if isinstance(event, Finished)
                          else None) for name, n in (("long", 40), ("short", 2), ("third", 2))]
    scheduler.submit(jobs)  # max_batch 2: "third" waits for a slot
    wait_until(lambda: len(ended) == 3)
    stats = scheduler.stats()
    assert ended == ["short", "third", "long"]  # "third" took the slot "short" left while "long" ran on
    assert stats["rows_admitted"] == 3 and stats["rows_finished"] == 3 and stats["running"] == 0
    assert scheduler.batches_run == 2 and list(scheduler.recent_batch_sizes) == [2, 1]  # admitted: 2, then 1
    # "long": 1 token from its prefill + 39 steps; "short" ran in step 1, "third" joined for step 2 at once
    assert stats["recent_step_sizes"] == [2, 2] + [1] * 37
    assert stats["steps"] == 39 and stats["tokens_generated"] == 44


def test_free_places_go_to_the_rows_that_could_finish_first(scheduler_on, tokenizer):
    scheduler = scheduler_on(max_batch=1)
    scheduler.decoder.mean_step_s = 0.1
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    long_first = GenerationJob(prompt, 100, lambda event: None, created_at=100.0)  # could finish at 110.0
    short_late = GenerationJob(prompt, 4, lambda event: None, created_at=110.5)  # 110.9: after long_first
    short_soon = GenerationJob(prompt, 4, lambda event: None, created_at=101.0)  # 101.4: overtakes long_first
    rows = WaitingRows(8)
    rows.submit([long_first, short_late, short_soon])
    assert rows.take(1, wait=False, priority=scheduler.finish_estimate) == [short_soon]
    assert rows.take(1, wait=False, priority=scheduler.finish_estimate) == [long_first]  # never starved
    assert rows.take(5, wait=False) == [short_late]


def test_a_short_request_overtakes_a_long_one_that_waits(scheduler_on, tokenizer):
    scheduler = scheduler_on(max_batch=1)
    ended: list[str] = []
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)

    def job(name: str, max_tokens: int) -> GenerationJob:
        return GenerationJob(prompt, max_tokens, lambda event: ended.append(name) if isinstance(event, Finished)
                             else None)

    with scheduler.model_lock:  # "running" is taken, then the worker waits: the other two wait in the queue
        scheduler.submit([job("running", 20)])
        wait_until(lambda: scheduler.batches_run == 1)
        scheduler.submit([job("long", 200)])
        scheduler.submit([job("short", 3)])
    wait_until(lambda: len(ended) == 3)
    assert ended == ["running", "short", "long"]


def test_a_row_cancelled_mid_decode_is_dropped_and_the_others_finish(scheduler_on, tokenizer):
    scheduler = scheduler_on(max_batch=4)
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    events = [[], []]
    jobs = [GenerationJob(prompt, LONG_TOKENS, events[0].append), GenerationJob(prompt, 30, events[1].append)]
    scheduler.submit(jobs)
    wait_until(lambda: scheduler.stats()["tokens_generated"] >= 10)
    jobs[0].cancelled.set()
    wait_until(lambda: scheduler.stats()["running"] == 0)
    stats = scheduler.stats()
    assert not any(isinstance(event, (Finished, Failed)) for event in events[0])
    assert isinstance(events[1][-1], Finished) and events[1][-1].completion_tokens == 30
    assert stats["rows_cancelled"] == 1 and stats["rows_finished"] == 1
    assert stats["tokens_generated"] < 200  # the cancelled row stopped at once, not after its 3000 tokens


def test_shutdown_fails_running_and_waiting_rows_with_503(scheduler_on, tokenizer):
    scheduler = scheduler_on(max_batch=2, max_waiting=4)
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    events = [[] for _ in range(4)]
    scheduler.submit([GenerationJob(prompt, LONG_TOKENS, row.append) for row in events])
    wait_until(lambda: scheduler.stats()["steps"] >= 3)
    scheduler.decoder.stop()
    scheduler.close()
    for row in events:
        assert isinstance(row[-1], Failed) and row[-1].status == 503, row[-1:]
    with pytest.raises(QueueFullError, match="shutting down"):
        scheduler.submit([GenerationJob(prompt, 1, lambda event: None)])


def test_a_full_queue_refuses_and_a_failing_step_fails_its_rows_not_the_worker(scheduler_on, tokenizer, monkeypatch):
    from attnsteer.server.running_batch import RunningBatch

    scheduler = scheduler_on(max_batch=1, max_waiting=2)
    prompt = prepared(tokenizer, PROMPTS[0][0], None, None)
    events = [[] for _ in range(4)]
    real_step, failures = RunningBatch.step, []

    def step_failing_once(self):
        if not failures:
            failures.append(len(self.rows))
            raise RuntimeError("boom")
        return real_step(self)

    monkeypatch.setattr(RunningBatch, "step", step_failing_once)
    with scheduler.model_lock:  # the worker takes one row, then waits for the lock: the others wait in the queue
        scheduler.submit([GenerationJob(prompt, 3, events[0].append)])
        wait_until(lambda: scheduler.stats()["running"] == 1)
        scheduler.submit([GenerationJob(prompt, 3, events[1].append), GenerationJob(prompt, 3, events[2].append)])
        with pytest.raises(QueueFullError, match="at most 2"):
            scheduler.submit([GenerationJob(prompt, 3, events[3].append)])
    wait_until(lambda: scheduler.stats()["rows_finished"] == 2)
    assert [type(event) for event in events[0]][-1] is Failed and "boom" in events[0][-1].message
    assert isinstance(events[1][-1], Finished) and isinstance(events[2][-1], Finished)
    assert events[3] == [] and failures == [1]


# ----- the server in both modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_the_server_serves_in_both_modes(tiny_model_dir, batching):
    from attnsteer import load_model

    steerer = Steerer(*load_model(str(tiny_model_dir("llama"))), heads="1")
    settings = ServerSettings(model_name="tiny", batching=batching, max_batch=4, max_tokens=64)
    bodies = [{"model": "tiny", "prompt": PROMPTS[i % 3][0], "max_tokens": n,
               **({"emphasis": [EMPHASIS[i % 3]]} if i % 2 else {})} for i, n in enumerate([20, 3, 9, 5, 14, 2])]
    with live_server(steerer, settings) as server:
        alone = [server.post("/v1/completions", body)[1]["choices"][0]["text"] for body in bodies]
        together: list[str | None] = [None] * len(bodies)

        def send(index: int) -> None:
            together[index] = server.post("/v1/completions", bodies[index])[1]["choices"][0]["text"]

        threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        stats = server.app.state.core.queue.stats()
    assert together == alone
    assert alone == [steerer.generate(body["prompt"], emphasize=body.get("emphasis"), max_new_tokens=body["max_tokens"],
                                      steer="emphasis" in body) for body in bodies]
    assert stats["batching"] == batching and stats["rows_admitted"] == 2 * len(bodies)


def test_embedded_steered_request_joining_mid_decode_reads_as_alone(embedded_steerer):
    """The real model (GQA, sliding-window layers): a steered row joins another steered row's decode."""
    model, tokenizer = embedded_steerer.model, embedded_steerer.tokenizer
    pasta = embedded_steerer.method.row()
    boost = make_method("instaboost", model, boost=5.0).row()
    rows = [prepared(tokenizer, EIFFEL, NEW_FACT, pasta),
            prepared(tokenizer, "The capital of France is Paris. The capital of Italy is", "Italy", boost)]
    alone = []
    for row, n in zip(rows, [8, 4], strict=True):
        jobs, events = jobs_for([row], [n])
        Recorder(ContinuousDecoder(model, tokenizer)).run(jobs, {0: [0]})
        alone.append(text_of(events[0]))
    jobs, events = jobs_for(rows, [8, 4])
    sizes = Recorder(ContinuousDecoder(model, tokenizer)).run(jobs, {0: [0], 2: [1]})
    assert [text_of(row_events) for row_events in events] == alone
    assert alone[0].startswith(" Rome") and sizes[:3] == [1, 1, 2]
