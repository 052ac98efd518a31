"""Per-request steering methods (`pasta`, `instaboost`, `spotlight`) on a tiny model: each served text equals the
library's, bad method input is a 400 naming the field, rows with different methods share a decode batch without
leaking into each other, and /v1/playground/info lists the methods."""

from __future__ import annotations

import json
import threading

import pytest

from attnsteer import Steerer
from attnsteer.server import ServerSettings
from attnsteer.server.schemas import SteeringParameters
from attnsteer.steering.methods import method_defaults, method_parameters, steering_method_names
from tests.server.conftest import live_server
from tests.tiny_models import tiny_model

PROMPT = "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome."
EMPHASIS = ["Currently, The Eiffel Tower is located in Rome."]
MAX_TOKENS = 8
METHODS = [  # (flat request fields, the library's Steerer options for the same steering)
    ({"method": "pasta", "alpha": 0.001, "heads": "all"}, {"method": "pasta", "alpha": 0.001, "heads": "all"}),
    ({"method": "instaboost", "boost": 1000.0}, {"method": "instaboost", "boost": 1000.0}),
    ({"method": "spotlight", "target": 0.9}, {"method": "spotlight", "target": 0.9}),
    ({"method": "spotlight", "target": 0.5, "granularity": "head"},
     {"method": "spotlight", "target": 0.5, "granularity": "head"}),
    ({"alpha": 0.5}, {"heads": "1", "alpha": 0.5}),  # no method: the server's (pasta on layer 1), alpha adjusted
]


@pytest.fixture(scope="module")
def steerer(tokenizer):
    """The server's default steering: PASTA on every head of layer 1, alpha 0.01."""
    return Steerer(tiny_model("llama"), tokenizer, heads="1")


@pytest.fixture(scope="module")
def server(steerer):
    """Rows arriving within a second of each other share a batch (so concurrent requests batch for sure)."""
    settings = ServerSettings(model_name="tiny", max_tokens=16, max_batch=8, batch_wait_s=1.0)
    with live_server(steerer, settings) as live:
        yield live


def completion(**fields) -> dict:
    return {"model": "tiny", "prompt": PROMPT, "max_tokens": MAX_TOKENS, "emphasis": EMPHASIS, **fields}


def text_of(server, body: dict) -> str:
    status, answer, _ = server.post("/v1/completions", body)
    assert status == 200, answer
    return answer["choices"][0]["text"]


def library_text(steerer: Steerer, options: dict, prompt: str = PROMPT, emphasis: list[str] = EMPHASIS) -> str:
    return steerer.with_options(**options).generate(prompt, emphasize=emphasis, max_new_tokens=MAX_TOKENS)


@pytest.mark.parametrize(("fields", "options"), METHODS, ids=[json.dumps(fields) for fields, _ in METHODS])
def test_each_method_serves_what_the_library_generates(server, steerer, fields, options):
    expected = library_text(steerer, options)
    assert expected != steerer.generate(PROMPT, max_new_tokens=MAX_TOKENS, steer=False)  # steering changed it
    assert text_of(server, completion(**fields)) == expected
    assert text_of(server, completion(steering=fields)) == expected  # the nested object is the same request


def test_chat_takes_a_method_too(server, steerer):
    messages = [{"role": "user", "content": PROMPT, "emphasis": EMPHASIS}]
    body = {"model": "tiny", "messages": messages, "max_tokens": MAX_TOKENS, "method": "instaboost", "boost": 1000}
    status, answer, _ = server.post("/v1/chat/completions", body)
    assert status == 200, answer
    chat = steerer.with_options(method="instaboost", boost=1000.0)
    assert answer["choices"][0]["message"]["content"] == chat.chat(
        [{"role": "user", "content": PROMPT}], emphasize=[EMPHASIS], max_new_tokens=MAX_TOKENS)


BAD = [  # (case, request fields, param, the message says)
    ("unknown method", {"method": "pastaa"}, "method", "did you mean 'pasta'?"),
    ("unknown method nested", {"steering": {"method": "spotlite"}}, "steering.method", "did you mean 'spotlight'?"),
    ("parameter of another method", {"method": "instaboost", "alpha": 0.1}, "alpha",
     "alpha is not a parameter of steering method 'instaboost'; its parameters: boost"),
    ("parameter of another method than the default", {"boost": 3}, "boost",
     "steering method 'pasta'; its parameters: heads, alpha, mode (the server's default method; give method"),
    ("parameter of another method nested", {"steering": {"method": "spotlight", "heads": "1"}}, "steering.heads",
     "heads is not a parameter of steering method 'spotlight'; its parameters: target, granularity"),
    ("boost below 1", {"method": "instaboost", "boost": 0.5}, "boost", "boost must be >= 1"),
    ("target 1", {"method": "spotlight", "target": 1}, "target", "target must be a share of attention in (0, 1)"),
    ("target 0 nested", {"steering": {"method": "spotlight", "target": 0}}, "steering.target", "in (0, 1)"),
    ("unknown granularity", {"method": "spotlight", "granularity": "token"}, "granularity", "'layer', 'head'"),
    ("alpha above 1", {"alpha": 2}, "alpha", "alpha must be in (0, 1]"),
    ("unknown mode", {"mode": "boost"}, "mode", "mode must be one of ('exclude', 'include')"),
    ("nested and flat", {"steering": {"method": "spotlight"}, "alpha": 0.1}, "steering",
     "as one `steering` object or as flat fields, not both (got steering and alpha)"),
    ("unknown field in the object", {"steering": {"temperature": 1}}, "steering.temperature", "unknown field"),
    ("heads as a file nested", {"steering": {"heads": "h.json"}}, "steering.heads", "does not read head files"),
    ("method without emphasis", {"emphasis": None, "method": "instaboost"}, "emphasis",
     "method given but nothing is emphasised"),
    ("object without emphasis", {"emphasis": None, "steering": {"method": "spotlight"}}, "emphasis",
     "steering given but nothing is emphasised"),
]


@pytest.mark.parametrize(("case", "fields", "param", "says"), BAD, ids=[case for case, *_ in BAD])
def test_bad_steering_is_a_400_naming_the_field(server, case, fields, param, says):
    status, body, _ = server.post("/v1/completions", completion(**fields))
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == param
    assert says in body["error"]["message"]


# Rows of different lengths (so the batch is left-padded): plain, then PASTA, InstABoost and Spotlight.
BATCH = [("The Eiffel Tower is in Paris.", None, None),
         (PROMPT, EMPHASIS, METHODS[0]),
         ("The Eiffel Tower is located in the city of Paris, the capital of France.", ["the capital of France"],
          METHODS[1]),
         ("She is a nurse who works at the hospital in Rome.", ["nurse"], METHODS[2])]


def test_rows_with_different_methods_share_a_batch_and_equal_each_alone(server, steerer):
    bodies = [completion(prompt=prompt, emphasis=emphasis, **(method[0] if method else {}))
              for prompt, emphasis, method in BATCH]
    alone = [text_of(server, body) for body in bodies]
    batches_before = server.app.state.core.queue.batches_run
    together: list[str | None] = [None] * len(bodies)

    def send(index: int) -> None:
        together[index] = text_of(server, bodies[index])

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert server.app.state.core.queue.batches_run == batches_before + 1  # one batch held all four rows
    assert list(server.app.state.core.queue.recent_batch_sizes)[-1] == len(bodies)
    assert together == alone
    assert alone == [library_text(steerer, method[1], prompt, emphasis) if method else
                     steerer.generate(prompt, max_new_tokens=MAX_TOKENS, steer=False)
                     for prompt, emphasis, method in BATCH]
    for (prompt, _, _), served in zip(BATCH[1:], alone[1:], strict=True):
        assert served != steerer.generate(prompt, max_new_tokens=MAX_TOKENS, steer=False)  # its steering acted


def test_playground_info_lists_the_methods_and_the_default(server):
    info = json.loads(server.get("/v1/playground/info")[1])
    assert info["steering_methods"] == [
        {"name": "pasta", "parameters": {"heads": None, "alpha": 0.01, "mode": "exclude"}},
        {"name": "instaboost", "parameters": method_defaults("instaboost")},
        {"name": "spotlight", "parameters": method_defaults("spotlight")},
    ]
    assert info["steering_default"] == {"method": "pasta", "heads": "1.0,1.1,1.2,1.3", "alpha": 0.01,
                                        "mode": "exclude"}
    assert text_of(server, completion(steering=info["steering_default"])) == text_of(server, completion())


@pytest.mark.parametrize(("fields", "layers"), [({}, [1]), ({"method": "instaboost"}, [0, 1, 2]),
                                                ({"method": "spotlight", "target": 0.5}, [0, 1, 2])])
def test_attention_view_shows_the_heads_each_method_steers(server, fields, layers):
    status, view, _ = server.post("/v1/attention", {"prompt": PROMPT, "emphasis": EMPHASIS, **fields})
    assert status == 200, view
    assert [layer["layer"] for layer in view["layers"]] == layers
    for layer in view["layers"]:
        assert layer["heads"] == [0, 1, 2, 3]
        assert all(steered > plain for plain, steered in zip(layer["plain"], layer["steered"], strict=True))


def test_the_request_fields_are_the_registry_parameters():
    """One source of truth: a parameter added to a method must be added to the request schema too."""
    parameters = {name for method in steering_method_names() for name in method_parameters(method)}
    assert set(SteeringParameters.model_fields) == {"method", *parameters}
