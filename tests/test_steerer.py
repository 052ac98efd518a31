"""The high-level API on a tiny random Llama: spans in every form, batching, scoring, bad input."""

from __future__ import annotations

import pytest
import torch

from attnsteer import Steerer, SteeringConfig
from attnsteer.errors import (
    EmptyPromptError,
    HeadConfigError,
    MarkupError,
    NoEmphasisError,
    SpanError,
    SteeringConfigError,
    UnsupportedModelError,
)
from tests.steering.test_equivalence import steer
from tests.tiny_models import tiny_model

FACT = "Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome."
NEW = "Currently, The Eiffel Tower is located in Rome."


@pytest.fixture(scope="module")
def steerer(tokenizer):
    return Steerer(tiny_model("llama"), tokenizer, heads="0.1,1.2,2")


def test_markup_substring_and_offsets_give_the_same_emphasis(steerer):
    start = FACT.index(NEW)
    by_markup = steerer.encode(FACT.replace(NEW, f"**{NEW}**"))
    by_substring = steerer.encode(FACT, emphasize=[[NEW]])
    by_offsets = steerer.encode(FACT, emphasize=[[(start, start + len(NEW))]])
    by_single_list = steerer.encode(FACT, emphasize=[NEW])
    by_bare_string = steerer.encode(FACT, emphasize=NEW)
    for other in (by_substring, by_offsets, by_single_list, by_bare_string):
        assert torch.equal(other.emphasis_mask, by_markup.emphasis_mask)
        assert torch.equal(other.encodings["input_ids"], by_markup.encodings["input_ids"])
    ids = by_markup.encodings["input_ids"][0][by_markup.emphasis_mask[0]]
    assert steerer.tokenizer.decode(ids).strip() == NEW
    assert not by_markup.emphasis_mask[0, 0]  # BOS is never emphasised


def test_batched_generation_equals_one_by_one(steerer):
    prompts = [FACT, "She is a nurse who works at the hospital."]
    spans = [[NEW], ["a nurse"]]
    batched = steerer.generate(prompts, emphasize=spans, max_new_tokens=6)
    alone = [steerer.generate(p, emphasize=[s], max_new_tokens=6) for p, s in zip(prompts, spans, strict=True)]
    assert batched == alone
    plain = steerer.generate(prompts, emphasize=spans, max_new_tokens=6, steer=False)
    assert [steered != unsteered for steered, unsteered in zip(batched, plain, strict=True)] == [True, True]
    marked = f"**{NEW}** The"  # one str in, one str out: the text of the one-row batch
    assert steerer.generate(marked, max_new_tokens=2) == steerer.generate([marked], max_new_tokens=2)[0]


def test_score_matches_manual_log_probs(steerer, tokenizer):
    prompt, continuation = f"{FACT} The city is", " Rome"
    steered = steerer.score(prompt, continuation, emphasize=[NEW])
    plain = steerer.score(prompt, continuation, emphasize=[NEW], steer=False)
    encoded = steerer.encode(prompt, emphasize=[NEW])
    cont_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.cat([encoded.encodings["input_ids"], torch.tensor([cont_ids])], dim=1)
    emphasis = torch.cat([encoded.emphasis_mask, torch.zeros(1, len(cont_ids), dtype=torch.bool)], dim=1)
    prompt_mask = torch.ones_like(ids, dtype=torch.bool)
    prompt_mask[:, -len(cont_ids) :] = False
    with torch.no_grad(), steer(steerer.model, steerer.heads, emphasis, prompt_mask, SteeringConfig()):
        log_probs = torch.log_softmax(steerer.model(input_ids=ids).logits[0], -1)
    start = encoded.encodings["input_ids"].shape[1]
    manual = sum(float(log_probs[start - 1 + i, token]) for i, token in enumerate(cont_ids))
    assert steered == pytest.approx(manual, abs=1e-4)
    assert abs(steered - plain) > 1e-4
    batch = steerer.score([prompt, prompt], [continuation, " Paris"], emphasize=[[NEW], [NEW]])
    assert batch[0] == pytest.approx(steered, abs=1e-4)
    assert batch[1] == pytest.approx(steerer.score(prompt, " Paris", emphasize=[NEW]), abs=1e-4)


@pytest.mark.parametrize(("prompt", "emphasize", "error", "message"), [
    (FACT, [["Berlin"]], SpanError, "Berlin"),
    (FACT, [[""]], SpanError, "empty"),
    (FACT, [[(5, 5)]], SpanError, "empty"),
    (FACT, [[(0, 10_000)]], SpanError, "10000"),
    ("Previously **Paris.", None, MarkupError, "unclosed|unbalanced|Unbalanced"),
    ("", None, EmptyPromptError, "empty"),
    ("   ", [["x"]], EmptyPromptError, "empty"),
    (FACT, None, NoEmphasisError, r"\*\*...\*\*"),
])
def test_bad_input_raises_a_clear_error(steerer, prompt, emphasize, error, message):
    with pytest.raises(error, match=message):
        steerer.generate(prompt, emphasize=emphasize, max_new_tokens=1)


def test_bad_heads_and_alpha_are_rejected(tokenizer):
    model = tiny_model("llama")
    with pytest.raises(HeadConfigError, match=r"head 4 of layer 0 is out of range: the model has heads 0..3"):
        Steerer(model, tokenizer, heads="0.4")
    with pytest.raises(HeadConfigError, match=r"layer 3 is out of range: the model has layers 0..2"):
        Steerer(model, tokenizer, heads="3")
    for alpha in (0.0, -1.0, 2.0):
        with pytest.raises(SteeringConfigError, match=r"alpha must be in \(0, 1\]"):
            Steerer(model, tokenizer, heads="0", alpha=alpha)


def test_model_without_attention_interface_is_rejected(tokenizer):
    from transformers import FalconConfig, FalconForCausalLM

    falcon = FalconForCausalLM(FalconConfig(vocab_size=384, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4)).eval()
    with pytest.raises(UnsupportedModelError, match="FalconForCausalLM does not dispatch attention"):
        Steerer(falcon, tokenizer, heads="0")


def test_with_options_shares_the_model(steerer):
    other = steerer.with_options(heads="1.0", alpha=0.5, mode="include")
    assert other.model is steerer.model and str(other.heads) == "1.0"
    assert other.config == SteeringConfig(0.5, "include") and steerer.config == SteeringConfig()


def test_occurrence_all_emphasises_every_match(tokenizer):
    model = tiny_model("llama")
    text = "Rome is old. Paris is big. Rome is warm."
    first = Steerer(model, tokenizer, heads="0").encode(text, emphasize="Rome")
    every = Steerer(model, tokenizer, heads="0", occurrence="all").encode(text, emphasize="Rome")
    assert tokenizer.decode(first.encodings["input_ids"][0][first.emphasis_mask[0]]).strip() == "Rome"
    assert tokenizer.decode(every.encodings["input_ids"][0][every.emphasis_mask[0]]).replace(" ", "") == "RomeRome"
    with pytest.raises(SpanError, match="occurrence must be one of 'first', 'all', got 'last'"):
        Steerer(model, tokenizer, heads="0", occurrence="last")


def test_static_cache_is_refused(steerer):
    with pytest.raises(SteeringConfigError, match="cache_implementation='static' is not supported"):
        steerer.generate(f"**{NEW}**", max_new_tokens=2, cache_implementation="static")


def test_rows_without_emphasis_run_unsteered_in_a_batch(steerer):
    prompts = [FACT, "She is a nurse who works at the hospital."]
    batched = steerer.score(prompts, [" Rome", " She"], emphasize=[[NEW], []])
    plain_second = steerer.score(prompts[1], " She", steer=False)
    assert batched[1] == pytest.approx(plain_second, abs=1e-4)


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
@pytest.mark.parametrize("steer", [True, False])
def test_score_candidates_equals_scoring_each(architecture, steer, tokenizer):
    steerer = Steerer(tiny_model(architecture), tokenizer, heads="0.1,1")
    prompt = f"{FACT} The Eiffel Tower is located in the city of"  # longer than gemma3's tiny window
    candidates = [" Rome", " Paris", " the capital of France"]
    shared = steerer.score_candidates(prompt, candidates, emphasize=[NEW], steer=steer)
    for (total, count), candidate in zip(shared, candidates, strict=True):
        assert total == pytest.approx(steerer.score(prompt, candidate, emphasize=[NEW], steer=steer), abs=1e-4)
        assert count == len(tokenizer(candidate, add_special_tokens=False)["input_ids"])
