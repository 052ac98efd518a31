"""Pieces without a model: settings, incremental detokenising with stop strings, chat template, the queue."""

from __future__ import annotations

import threading
import time

import pytest

from attnsteer.chat import PLAIN_STOPS, render_chat
from attnsteer.errors import AttnsteerError
from attnsteer.server.batching import BatchQueue, QueueFullError
from attnsteer.server.engine import Failed, GenerationJob
from attnsteer.server.prompts import PreparedPrompt
from attnsteer.server.reply import ReplyText
from attnsteer.server.settings import ServerSettings


@pytest.mark.parametrize("change", [{"max_batch": 0}, {"max_waiting": 2, "max_batch": 4}, {"max_tokens": 1.5},
                                    {"default_max_tokens": 300}, {"batch_wait_s": -1}])
def test_settings_refuse_bad_limits(change):
    with pytest.raises(AttnsteerError):
        ServerSettings(**change)


def deltas(tokenizer, text: str, stop: tuple[str, ...]) -> tuple[list[str], bool, str]:
    reply, sent, stopped = ReplyText(tokenizer, stop), [], False
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        delta, stopped = reply.add(token)
        sent.append(delta)
        if stopped:
            break
    sent.append(reply.flush())
    return sent, stopped, reply.text


def test_reply_deltas_add_up_to_the_text(tokenizer):
    text = "The Eiffel Tower is located in the city of Paris."
    sent, stopped, whole = deltas(tokenizer, text, ())
    assert "".join(sent) == whole == text and not stopped
    assert sum(1 for piece in sent if piece) > 3


def test_reply_stops_before_a_stop_string_and_never_sends_part_of_it(tokenizer):
    text = "Paris is the capital.\nUser: and Rome?"
    sent, stopped, whole = deltas(tokenizer, text, ("\nUser:",))
    assert stopped and whole == "Paris is the capital."
    assert "".join(sent) == "Paris is the capital."


def test_plain_chat_template_offsets(tokenizer):
    chat = render_chat(tokenizer, ["system", "user"], ["Be brief.", "Where is the Eiffel Tower?"])
    assert chat.text == "System: Be brief.\n\nUser: Where is the Eiffel Tower?\n\nAssistant:"
    assert chat.text[chat.offsets[1]:].startswith("Where is")
    assert chat.stop == PLAIN_STOPS and not chat.has_special_tokens


def job(events: list) -> GenerationJob:
    return GenerationJob(PreparedPrompt("x", [1], [False], None), 1, events.append)


def wait_for(condition) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_queue_batches_refuses_when_full_and_survives_a_failing_batch():
    release, seen = threading.Event(), []

    def run_batch(jobs):
        release.wait(10)
        seen.append(len(jobs))
        if len(seen) == 1:
            raise RuntimeError("boom")

    queue = BatchQueue(run_batch, max_batch=2, max_waiting=2, batch_wait_s=0.0, model_lock=threading.Lock())
    events = [[] for _ in range(4)]
    queue.submit([job(events[0])])
    wait_for(lambda: queue.batches_run == 1)  # the worker took the first row and waits on `release`
    assert list(queue.recent_batch_sizes) == [1]
    queue.submit([job(events[1]), job(events[2])])
    with pytest.raises(QueueFullError):
        queue.submit([job(events[3])])
    release.set()
    wait_for(lambda: len(seen) == 2)
    queue.close()
    assert seen == [1, 2]  # the two waiting rows ran as one batch after the first batch failed
    assert queue.batches_run == 2 and list(queue.recent_batch_sizes) == [1, 2]
    assert isinstance(events[0][0], Failed) and "boom" in events[0][0].message
    assert events[1] == events[2] == events[3] == []


def test_queue_remembers_a_bounded_number_of_batch_sizes(monkeypatch):
    import attnsteer.server.batching as batching

    monkeypatch.setattr(batching, "RECENT_BATCHES", 3)
    done = threading.Semaphore(0)
    queue = BatchQueue(lambda jobs: done.release(), max_batch=1, max_waiting=1, batch_wait_s=0.0,
                       model_lock=threading.Lock())
    for _ in range(5):
        queue.submit([job([])])
        assert done.acquire(timeout=10)
    wait_for(lambda: queue.batches_run == 5)
    queue.close()
    assert list(queue.recent_batch_sizes) == [1, 1, 1]  # the last three of five batches
