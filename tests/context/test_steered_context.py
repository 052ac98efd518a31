"""A cached steered context answers exactly as recomputing context + query from scratch."""

from __future__ import annotations

import pytest
import torch

from attnsteer.context import ContextError, LLMSteerConfig, prepare_context
from attnsteer.steerer import Steerer
from attnsteer.steering import prepare_state, steered
from tests.context.conftest import CONTEXT, QUERY
from tests.tiny_models import tiny_model

TOLERANCE = 1e-4


def from_scratch(context, query: str) -> torch.Tensor:
    """[query tokens, vocab]: one forward over context + query, the context's bias on keys 0..n-1 only."""
    steerer = context.steerer
    query_ids = context.query_ids(query)
    ids = torch.cat([context.input_ids, query_ids], dim=1)
    n = context.num_tokens
    with torch.inference_mode():
        if context.emphasis_mask is None:
            return steerer.model(input_ids=ids).logits[0, n:].float()
        emphasis = torch.cat([context.emphasis_mask, torch.zeros_like(query_ids, dtype=torch.bool)], dim=1)
        prompt = torch.zeros_like(emphasis)
        prompt[:, :n] = True  # the query's own tokens are never down-weighted
        with steered(steerer.model, prepare_state(steerer.model, steerer.row_steering, emphasis, prompt)):
            return steerer.model(input_ids=ids).logits[0, n:].float()


@pytest.mark.parametrize("architecture", ["gemma3", "mistral", "llama"])
@pytest.mark.parametrize("method", ["llmsteer", "spans", "plain"])
def test_cached_context_equals_recomputing_tiny(tokenizer, architecture, method):
    steerer = Steerer(tiny_model(architecture), tokenizer, heads="0.1,1.0,2.2", markup=None)
    emphasize = ["the capital of France"] if method == "spans" else None
    context = prepare_context(steerer, CONTEXT, method, emphasize=emphasize, llmsteer=LLMSteerConfig(top_k=8))
    assert context.steered == (method != "plain")
    cached = context.logits(QUERY)
    reference = from_scratch(context, QUERY)
    assert cached.shape == reference.shape
    assert (cached - reference).abs().max().item() <= TOLERANCE


def test_steering_changes_the_answer_and_only_through_the_context(tiny_steerer):
    steered = prepare_context(tiny_steerer, CONTEXT, "spans", emphasize=["She is a nurse"])
    plain = prepare_context(tiny_steerer, CONTEXT, "plain")
    assert torch.equal(steered.input_ids, plain.input_ids) and not plain.steered  # the same tokens, one emphasis
    assert "".join(steered.emphasised_text) == "She is a nurse"
    assert (steered.logits(QUERY) - plain.logits(QUERY)).abs().max().item() > 1e-3
    assert steered.generate(QUERY, max_new_tokens=6) != plain.generate(QUERY, max_new_tokens=6)


@pytest.mark.parametrize("method", ["llmsteer", "spans"])
def test_cached_context_equals_recomputing_embedded(embedded_steerer, method):
    # ~600 tokens: longer than Gemma 3's 512-token sliding window, so the query reads a trimmed cache.
    text = " ".join([CONTEXT] * 18)
    emphasize = ["the capital of France"] if method == "spans" else None
    context = embedded_steerer.prepare_context(text, method, emphasize=emphasize)
    assert context.num_tokens > 512 and context.steered
    query = "\n\nQuestion: Where is the Eiffel Tower?\nAnswer:"
    assert (context.logits(query) - from_scratch(context, query)).abs().max().item() <= TOLERANCE


def test_queries_do_not_leak_and_the_stored_cache_never_grows(embedded_steerer):
    context = embedded_steerer.prepare_context(CONTEXT, "llmsteer")
    stored = context.cache.get_seq_length()
    first, second = "\n\nQuestion: Where does the nurse work?\nAnswer:", "\n\nQuestion: Who is in Seattle?\nAnswer:"
    alone = context.logits(second)
    context.generate(first, max_new_tokens=6)
    context.score(first, " at the hospital")
    after = context.logits(second)
    assert torch.equal(alone, after)
    assert context.cache.get_seq_length() == stored == context.num_tokens
    # the same answer as a context prepared only for the second query
    fresh = embedded_steerer.prepare_context(CONTEXT, "llmsteer")
    assert context.generate(second, max_new_tokens=6) == fresh.generate(second, max_new_tokens=6)


def test_score_and_generate_agree_with_logits(embedded_steerer):
    context = embedded_steerer.prepare_context(CONTEXT, "spans", emphasize=["He is a software engineer"])
    query = " The software engineer lives in"
    logits = context.logits(query)
    token = int(logits[-1].argmax())
    word = embedded_steerer.tokenizer.decode([token])
    assert context.generate(query, max_new_tokens=1) == word
    expected = float(torch.log_softmax(logits[-1], -1)[token])
    assert context.score(query, word) == pytest.approx(expected, abs=1e-4)


def test_bad_input_is_refused(tiny_steerer):
    with pytest.raises(ContextError, match="context is empty"):
        prepare_context(tiny_steerer, "   ", "plain")
    with pytest.raises(ContextError, match="unknown context method 'bold'; choose one of 'llmsteer', 'spans', 'plain'"):
        prepare_context(tiny_steerer, CONTEXT, "bold")
    with pytest.raises(ContextError, match="emphasize goes with method='spans'"):
        prepare_context(tiny_steerer, CONTEXT, "llmsteer", emphasize=["Paris"])
    with pytest.raises(ContextError, match="top_k must be a positive integer"):
        prepare_context(tiny_steerer, CONTEXT, "llmsteer", llmsteer=LLMSteerConfig(top_k=0))
    with pytest.raises(ContextError, match="layers .* out of range"):
        prepare_context(tiny_steerer, CONTEXT, "llmsteer", llmsteer=LLMSteerConfig(layers=(7,)))
    context = prepare_context(tiny_steerer, CONTEXT, "plain")
    with pytest.raises(ContextError, match="query is empty"):
        context.generate("  ")
    with pytest.raises(ContextError, match="answer is empty"):
        context.score(QUERY, "")


def test_generate_prefills_only_the_query_on_the_stored_cache(tiny_steerer, monkeypatch):
    context = prepare_context(tiny_steerer, CONTEXT, "llmsteer")
    query_tokens = len(tiny_steerer.tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    forward, lengths = tiny_steerer.model.forward, []

    def recording_forward(*args, **kwargs):
        lengths.append(kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_steerer.model, "forward", recording_forward)
    context.generate(QUERY, max_new_tokens=3)
    assert lengths == [query_tokens, 1, 1]


@pytest.mark.parametrize("granularity", ["head", "layer"])
def test_only_a_causal_spotlight_context_is_cached(tiny_steerer, granularity):
    """"head" reads position i from tokens <= i, so the cache equals recomputing; "layer" cannot, and says so."""
    steerer = tiny_steerer.with_options(method="spotlight", target=0.5, granularity=granularity)
    if granularity == "layer":
        with pytest.raises(ContextError, match="use granularity='head'"):
            prepare_context(steerer, CONTEXT, "spans", emphasize=["the capital of France"])
        return
    context = prepare_context(steerer, CONTEXT, "spans", emphasize=["the capital of France"])
    assert (context.logits(QUERY) - from_scratch(context, QUERY)).abs().max().item() <= TOLERANCE
