"""Prometheus metrics: the per-request timer, the scrape-time collector, and /metrics on a live server."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client", reason="the server extra is not installed")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from attnsteer.server.metrics import ServerMetrics, TokenRate  # noqa: E402

from .conftest import EIFFEL, MODEL_NAME  # noqa: E402


def samples(exposition: bytes | str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_token_rate_counts_only_the_window():
    rate = TokenRate(window_s=10)
    rate.add(50, now=0.0)
    rate.add(30, now=8.0)
    assert rate.per_second(now=9.0) == pytest.approx(8.0)
    assert rate.per_second(now=15.0) == pytest.approx(3.0)  # the first event left the window


def test_a_request_is_timed_once_with_its_outcome():
    stats = {"waiting": 3, "running": 2, "steps": 7, "recent_step_sizes": [1, 3]}
    cache = {"hits": 4, "misses": 1, "bytes": 1024, "max_bytes": 4096}
    metrics = ServerMetrics(lambda: stats, lambda: cache)
    timer = metrics.request("chat")
    timer.first_text()
    timer.first_text()  # only the first counts
    timer.finished(prompt_tokens=12, completion_tokens=5)
    timer.failed("cancelled")  # after finishing: ignored
    metrics.request("chat").failed("cancelled")
    metrics.rejected("completions", "queue_full")
    found = samples(metrics.exposition())
    assert found[("attnsteer_requests_total", (("endpoint", "chat"), ("outcome", "ok")))] == 1
    assert found[("attnsteer_requests_total", (("endpoint", "chat"), ("outcome", "cancelled")))] == 1
    assert found[("attnsteer_requests_total", (("endpoint", "completions"), ("outcome", "queue_full")))] == 1
    assert found[("attnsteer_time_to_first_token_seconds_count", (("endpoint", "chat"),))] == 1
    assert found[("attnsteer_request_latency_seconds_count", (("endpoint", "chat"),))] == 1
    assert found[("attnsteer_tokens_total", (("kind", "generated"),))] == 5
    assert found[("attnsteer_tokens_total", (("kind", "prompt"),))] == 12
    assert found[("attnsteer_queue_waiting_rows", ())] == 3
    assert found[("attnsteer_batch_running_rows", ())] == 2
    assert found[("attnsteer_decode_steps_total", ())] == 7
    assert found[("attnsteer_batch_size_recent_mean", ())] == 2
    assert found[("attnsteer_prefix_cache_hits_total", ())] == 4
    assert found[("attnsteer_prefix_cache_bytes", ())] == 1024


def test_two_apps_keep_separate_counters():
    first, second = ServerMetrics(dict), ServerMetrics(dict)
    first.request("chat").finished(1, 1)
    key = ("attnsteer_requests_total", (("endpoint", "chat"), ("outcome", "ok")))
    assert samples(first.exposition())[key] == 1
    assert key not in samples(second.exposition())


def test_metrics_endpoint_counts_served_requests(embedded_server):
    before = samples(embedded_server.get("/metrics")[1])
    status, body, _ = embedded_server.post("/v1/completions", {"model": MODEL_NAME, "prompt": EIFFEL, "max_tokens": 4})
    assert status == 200, body
    status, raw = embedded_server.get("/metrics")
    assert status == 200
    after = samples(raw)
    key = ("attnsteer_requests_total", (("endpoint", "completions"), ("outcome", "ok")))
    assert after[key] == before.get(key, 0) + 1
    generated = ("attnsteer_tokens_total", (("kind", "generated"),))
    assert after[generated] == before.get(generated, 0) + body["usage"]["completion_tokens"]
    assert after[("attnsteer_decode_steps_total", ())] > before.get(("attnsteer_decode_steps_total", ()), 0)
    assert ("attnsteer_queue_waiting_rows", ()) in after
