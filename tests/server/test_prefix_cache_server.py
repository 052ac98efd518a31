"""The server's steered prefix cache: requests sharing a steered context reuse its blocks and answer exactly as
without the cache; different emphasis or steering never reuses; Spotlight "layer" is refused; the counters show
in /health and /metrics."""

from __future__ import annotations

import pytest

from attnsteer import Steerer, load_model
from attnsteer.server import ServerSettings
from tests.server.conftest import live_server

CONTEXT = ("She is a nurse who works at the hospital. He is a software engineer in Seattle. "
           "The Eiffel Tower is located in the city of Paris, the capital of France. " * 2)
EMPHASIS = "The Eiffel Tower is located in the city of Paris"
QUESTIONS = ["Replace every she and he with they.", "Answer the occupation of the person.",
             "Currently, The Eiffel Tower is located in Rome.", "He is a nurse."]


@pytest.fixture(scope="module")
def tiny_steerer(tiny_model_dir):
    return Steerer(*load_model(str(tiny_model_dir("llama"))), heads="1")


def answers(server, bodies: list[dict]) -> list[str]:
    texts = []
    for body in bodies:
        status, reply, _ = server.post("/v1/completions", body)
        assert status == 200, reply
        texts.append(reply["choices"][0]["text"])
    return texts


def bodies_for(emphasis: list[str] | None, **steering) -> list[dict]:
    return [{"model": "tiny", "prompt": CONTEXT + question, "max_tokens": 6,
             **({"emphasis": emphasis} if emphasis else {}), **steering} for question in QUESTIONS]


def test_requests_on_one_steered_context_reuse_it_and_answer_as_without_the_cache(tiny_steerer):
    bodies = bodies_for([EMPHASIS])
    with live_server(tiny_steerer, ServerSettings(model_name="tiny", prefix_cache_bytes=0)) as server:
        uncached = answers(server, bodies)
        assert server.get("/health")[1].count(b'"prefix_cache":null') == 1
    with live_server(tiny_steerer, ServerSettings(model_name="tiny")) as server:
        cached = answers(server, bodies)
        stats = server.app.state.core.prefix_cache.stats()
        reused = server.app.state.core.queue.stats()["reused_prompt_tokens"]
    assert cached == uncached
    assert cached == [tiny_steerer.generate(body["prompt"], emphasize=[EMPHASIS], max_new_tokens=6)
                      for body in bodies]
    assert stats["misses"] == 1 and stats["hits"] == len(QUESTIONS) - 1
    context_blocks = len(tiny_steerer.tokenizer(CONTEXT)["input_ids"]) // 16
    assert reused >= (len(QUESTIONS) - 1) * (context_blocks - 1) * 16  # the shared context, block-aligned


def test_other_emphasis_or_steering_never_reuses_and_layer_spotlight_is_refused(tiny_steerer):
    with live_server(tiny_steerer, ServerSettings(model_name="tiny")) as server:
        core = server.app.state.core
        answers(server, bodies_for([EMPHASIS])[:1])
        plain = answers(server, bodies_for(None)[:1])  # same tokens, no emphasis: another settings key
        boosted = answers(server, bodies_for([EMPHASIS], method="instaboost", boost=4.0)[:1])
        assert core.prefix_cache.stats()["hits"] == 0
        answers(server, bodies_for(["hospital"])[1:2])  # other flags from the first sentence on: no reuse
        assert core.prefix_cache.stats()["hits"] == 0
        layer = bodies_for([EMPHASIS], method="spotlight", target=0.5, granularity="layer")[:2]
        layered = answers(server, layer)
        stats = core.prefix_cache.stats()
    assert stats["hits"] == 0 and stats["refused"] == 2
    assert plain == [tiny_steerer.generate(CONTEXT + QUESTIONS[0], max_new_tokens=6, steer=False)]
    instaboost = tiny_steerer.with_options(method="instaboost", boost=4.0)
    assert boosted == [instaboost.generate(CONTEXT + QUESTIONS[0], emphasize=[EMPHASIS], max_new_tokens=6)]
    spotlight = tiny_steerer.with_options(method="spotlight", target=0.5, granularity="layer")
    assert layered == [spotlight.generate(body["prompt"], emphasize=[EMPHASIS], max_new_tokens=6) for body in layer]


def test_prefix_cache_budget_is_checked():
    from attnsteer.server.settings import ServerSettingsError

    with pytest.raises(ServerSettingsError, match="prefix_cache_bytes must be an integer >= 0"):
        ServerSettings(prefix_cache_bytes=-1)
