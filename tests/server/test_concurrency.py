"""Many requests at once: batched, all answered; a full queue answers 429 with Retry-After."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from attnsteer.server import ServerSettings
from tests.server.conftest import EIFFEL, MODEL_NAME, NEW_FACT, live_server


def test_fifty_concurrent_requests_all_answered(embedded_server, openai_client):
    core = embedded_server.app.state.core
    before = core.queue.stats()

    def ask(index: int):
        extra = {"emphasis": [NEW_FACT], "alpha": 0.01 * (1 + index % 3)} if index % 2 else {}
        response = openai_client.completions.create(model=MODEL_NAME, prompt=EIFFEL, max_tokens=2, extra_body=extra)
        return index, response.choices[0].text

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = dict(pool.map(ask, range(50)))  # any 4xx/5xx raises here
    elapsed = time.monotonic() - started
    assert len(answers) == 50
    assert {answers[i] for i in range(0, 50, 2)} == {" Paris."}  # plain rows, batched with steered ones
    assert all(answers[i].startswith(" Rome") for i in range(1, 50, 2))
    after = core.queue.stats()
    step_sizes = after["recent_step_sizes"][before["steps"] - after["steps"] :]
    assert after["rows_admitted"] - before["rows_admitted"] == 50
    assert max(step_sizes) == core.settings.max_batch  # requests were decoded together
    assert elapsed < 120


def test_full_queue_answers_429_with_retry_after(embedded_steerer):
    settings = ServerSettings(model_name=MODEL_NAME, max_batch=1, max_waiting=2)
    body = {"model": MODEL_NAME, "prompt": "The capital of France is", "max_tokens": 1}
    with live_server(embedded_steerer, settings) as server:
        core = server.app.state.core
        results = []
        with core.model_lock:  # the worker takes one row, then blocks: rows pile up deterministically
            threads = [threading.Thread(target=lambda: results.append(server.post("/v1/completions", body)))]
            threads[0].start()
            wait_until(lambda: core.queue.batches_run == 1)
            threads += [threading.Thread(target=lambda: results.append(server.post("/v1/completions", body)))
                        for _ in range(2)]
            for thread in threads[1:]:
                thread.start()
            wait_until(lambda: core.queue.waiting == 2)
            status, error, headers = server.post("/v1/completions", body)
        for thread in threads:
            thread.join(timeout=60)
    assert status == 429
    assert headers["retry-after"] == "1"
    assert error["error"]["type"] == "rate_limit_error"
    assert [result[0] for result in results] == [200, 200, 200]


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
