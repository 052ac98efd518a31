"""Every kind of bad input gets 400 (404 for an unknown model) with an OpenAI-style body naming the field."""

from __future__ import annotations

import pytest

from tests.server.conftest import EIFFEL, MODEL_NAME, NEW_FACT

COMPLETION = {"model": MODEL_NAME, "prompt": EIFFEL, "max_tokens": 2}
CHAT = {"model": MODEL_NAME, "messages": [{"role": "user", "content": EIFFEL}], "max_tokens": 2}

BAD_COMPLETIONS = [
    ("unknown field", {"temprature": 0.5}, "temprature", "unknown field"),
    ("wrong type", {"max_tokens": "many"}, "max_tokens", "integer"),
    ("emphasis of the wrong type", {"emphasis": 7}, "emphasis", "list"),
    ("span not in the prompt", {"emphasis": ["Berlin"]}, "emphasis", "'Berlin' was not found"),
    ("span past the prompt", {"emphasis": [{"start": 5, "end": 5000}]}, "emphasis", "5000"),
    ("alpha above 1", {"emphasis": [NEW_FACT], "alpha": 2.0}, "alpha", "alpha must be in (0, 1]"),
    ("alpha zero", {"emphasis": [NEW_FACT], "alpha": 0}, "alpha", "alpha must be in (0, 1]"),
    ("head out of range", {"emphasis": [NEW_FACT], "heads": "11.9"}, "heads", "head 9"),
    ("layer out of range", {"emphasis": [NEW_FACT], "heads": "40"}, "heads", "layer 40"),
    ("heads as a file path", {"emphasis": [NEW_FACT], "heads": "/etc/heads.json"}, "heads", "does not read"),
    ("unknown mode", {"emphasis": [NEW_FACT], "mode": "boost"}, "mode", "exclude"),
    ("unknown method", {"emphasis": [NEW_FACT], "method": "instaboots"}, "method", "did you mean 'instaboost'?"),
    ("boost below 1", {"emphasis": [NEW_FACT], "method": "instaboost", "boost": 0.5}, "boost", "boost must be >= 1"),
    ("empty prompt", {"prompt": "  "}, "prompt", "empty"),
    ("unbalanced markup", {"prompt": "a **b", "emphasis_markup": True}, "prompt", "**"),
    ("markup asked but absent", {"emphasis_markup": True}, "emphasis_markup", "no **...**"),
    ("alpha without emphasis", {"alpha": 0.1}, "emphasis", "nothing is emphasised"),
    ("max_tokens above the limit", {"max_tokens": 65}, "max_tokens", "limit 64"),
    ("max_tokens zero", {"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
    ("n above 1", {"n": 2}, "n", "1"),
    ("nested emphasis for one prompt", {"emphasis": [["Rome"]]}, "emphasis", "flat list"),
    ("one emphasis list for two prompts", {"prompt": [EIFFEL, EIFFEL], "emphasis": [["Rome"]]}, "emphasis", "2 lists"),
    ("too long a prompt", {"prompt": "word " * 2100}, "prompt", "at most 2048"),
]


@pytest.mark.parametrize(("case", "change", "param", "says"), BAD_COMPLETIONS, ids=[c[0] for c in BAD_COMPLETIONS])
def test_bad_completion_requests(embedded_server, case, change, param, says):
    status, body, _ = embedded_server.post("/v1/completions", {**COMPLETION, **change})
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert says in body["error"]["message"]


BAD_CHATS = [
    ("unknown role", {"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "'user'"),
    ("no messages", {"messages": []}, "messages", "at least 1"),
    ("span not in the message", {"messages": [{"role": "user", "content": "hi", "emphasis": ["Rome"]}]},
     "emphasis", "'Rome' was not found"),
    ("substring in no message", {"emphasis": ["Berlin"]}, "emphasis", "occurs in no message"),
    ("empty message with emphasis", {"messages": [{"role": "user", "content": "", "emphasis": ["x"]}]},
     "messages[0].content", "empty"),
    ("head out of range", {"emphasis": [NEW_FACT], "heads": {"3": [4]}}, "heads", "head 4"),
]


@pytest.mark.parametrize(("case", "change", "param", "says"), BAD_CHATS, ids=[c[0] for c in BAD_CHATS])
def test_bad_chat_requests(embedded_server, case, change, param, says):
    status, body, _ = embedded_server.post("/v1/chat/completions", {**CHAT, **change})
    assert status == 400, body
    assert body["error"]["param"] == param
    assert says in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""], ids=["malformed", "not an object", "empty"])
def test_malformed_bodies(embedded_server, raw):
    status, body, _ = embedded_server.post("/v1/completions", None, raw=raw)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]


def test_unknown_model_is_404(embedded_server):
    status, body, _ = embedded_server.post("/v1/completions", {**COMPLETION, "model": "gpt-4"})
    assert status == 404
    assert body["error"]["code"] == "model_not_found" and MODEL_NAME in body["error"]["message"]


def test_attention_view_needs_emphasis(embedded_server):
    status, body, _ = embedded_server.post("/v1/attention", {"prompt": EIFFEL})
    assert status == 400 and body["error"]["param"] == "emphasis"


def test_server_keeps_serving_after_bad_input(embedded_server):
    for change in (change for _, change, _, _ in BAD_COMPLETIONS[:5]):
        embedded_server.post("/v1/completions", {**COMPLETION, **change})
    status, body, _ = embedded_server.post("/v1/completions", COMPLETION)
    assert status == 200 and body["choices"][0]["text"] == " Paris."
