"""The context methods' registry: one entry per method, typos named with the closest method."""

from __future__ import annotations

import pytest

from attnsteer.context import (
    ContextError,
    ContextMethod,
    UnknownContextMethodError,
    context_method_names,
    prepare_context,
    register_context_method,
)
from attnsteer.context.prepare import get_context_method, steering_hash
from tests.context.conftest import CONTEXT


def test_the_three_methods_are_registered_with_what_they_take():
    assert context_method_names() == ["llmsteer", "spans", "plain"]
    assert [name for name in context_method_names() if get_context_method(name).takes_spans] == ["spans"]
    assert [name for name in context_method_names() if not get_context_method(name).steers] == ["plain"]


def test_unknown_method_names_the_allowed_and_the_closest(tiny_steerer):
    with pytest.raises(UnknownContextMethodError, match=r"unknown context method 'span'; choose one of 'llmsteer', "
                                                        r"'spans', 'plain'; did you mean 'spans'\?"):
        prepare_context(tiny_steerer, CONTEXT, "span")
    assert issubclass(UnknownContextMethodError, ContextError)


def test_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="context method name 'plain' is already registered"):
        register_context_method(ContextMethod("plain", get_context_method("spans").emphasis, takes_spans=True))
    assert register_context_method(get_context_method("plain")) is get_context_method("plain")


def test_the_plain_cache_key_ignores_steering_and_the_others_do_not(tiny_steerer):
    from attnsteer.context import LLMSteerConfig

    other = tiny_steerer.with_options(alpha=0.5)
    config = LLMSteerConfig()
    assert steering_hash(tiny_steerer, "plain", None, config) == steering_hash(other, "plain", None, config)
    for method, emphasize in (("llmsteer", None), ("spans", ["Paris"])):
        assert steering_hash(tiny_steerer, method, emphasize, config) != steering_hash(other, method, emphasize, config)
    assert steering_hash(tiny_steerer, "spans", ["Paris"], config) != steering_hash(tiny_steerer, "spans", ["France"],
                                                                                     config)
