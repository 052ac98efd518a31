"""/v1/attention: the steered heads' share of attention on the emphasis, plain vs steered."""

from __future__ import annotations

import pytest

from tests.server.conftest import EIFFEL, NEW_FACT


def test_steering_moves_attention_onto_the_span(embedded_server, embedded_steerer):
    status, view, _ = embedded_server.post("/v1/attention", {"prompt": EIFFEL, "emphasis": [NEW_FACT],
                                                             "heads": "11.2,12.1"})
    assert status == 200, view
    assert [(layer["layer"], layer["heads"]) for layer in view["layers"]] == [(11, [2]), (12, [1])]
    for layer in view["layers"]:
        for plain, steered in zip(layer["plain"], layer["steered"], strict=True):
            assert 0 <= plain < steered <= 1
    assert len(view["tokens"]) == len(embedded_steerer.tokenizer(EIFFEL)["input_ids"])
    emphasised = "".join(token for token, flag in zip(view["tokens"], view["emphasis"], strict=True) if flag)
    assert emphasised.strip() == NEW_FACT
    for weights in view["last_token"].values():
        assert sum(weights) == pytest.approx(1.0, abs=1e-4)  # one query's attention, averaged over heads


def test_model_implementation_is_restored(embedded_server, embedded_steerer):
    before = embedded_steerer.model.config._attn_implementation
    embedded_server.post("/v1/attention", {"prompt": EIFFEL, "emphasis": [NEW_FACT]})
    assert embedded_steerer.model.config._attn_implementation == before
