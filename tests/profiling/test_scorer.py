"""The profiling scorer's reuse (prefix cache, replayed lower layers, batched items) changes no score."""

from __future__ import annotations

import pytest
import torch

from attnsteer.profiling.batching import group_items, make_batch
from attnsteer.profiling.items import item_scores, make_item
from attnsteer.profiling.scorer import HeadScorer
from attnsteer.spans import CharSpan
from attnsteer.steering.activation import steered
from attnsteer.steering.bias import token_bias
from attnsteer.steering.state import SteeringState
from attnsteer.tasks import Example
from tests.tiny_models import CORPUS, tiny_model

PROMPT = CORPUS[0] + " " + CORPUS[1]
SPAN = CharSpan(PROMPT.index("Currently"), PROMPT.index("Rome.") + 5)


def score_example(prompt: str = PROMPT, start: str = "Currently") -> Example:
    span = CharSpan(prompt.index(start), prompt.index(start) + 30)
    return Example(id="toy/score", kind="score", prompt=prompt, emphasis=(span,), answer=" Rome",
                   candidates=(" Rome", " Paris"), gold=0)


def generate_example(prompt: str = PROMPT, answer: str = " The tower is in Rome.") -> Example:
    return Example(id="toy/generate", kind="generate", prompt=prompt, emphasis=(SPAN,), answer=answer,
                   max_new_tokens=8)


def reference_scores(scorer, item, weights):
    """One item, full sequence, no reuse: the plain steered forward the scorer must reproduce. -> [variants]"""
    variants = next(iter(weights.values())).shape[0]
    bias = token_bias(item.emphasis_mask[None], item.prompt_mask[None], scorer.config)
    with torch.inference_mode(), steered(scorer.model, SteeringState(bias, weights)):
        logits = scorer.model(input_ids=item.input_ids[None].expand(variants, -1),
                              logits_to_keep=item.num_scored_positions).logits
    return item_scores(item, logits)


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "mistral", "gpt2"])
@pytest.mark.parametrize("make_example", [score_example, generate_example])
def test_reuse_matches_the_full_steered_forward(architecture, make_example, tokenizer):
    model = tiny_model(architecture)
    scorer = HeadScorer(model)
    item = make_item(make_example(), tokenizer)
    assert item is not None and item.first_emphasised > 0
    batch = make_batch([item])
    baseline = scorer.baseline(batch)
    heads = scorer.num_heads
    with torch.inference_mode():
        logits = model(input_ids=item.input_ids[None], logits_to_keep=item.num_scored_positions).logits
    assert float(baseline.scores[0]) == pytest.approx(float(item_scores(item, logits)[0]), abs=1e-4)
    rows = torch.cat([torch.eye(heads), torch.ones(1, heads)])
    for layer in (0, scorer.num_layers - 1):
        got = scorer.score_layer(batch, baseline, layer, rows)[0]
        torch.testing.assert_close(got, reference_scores(scorer, item, {layer: rows}), atol=1e-4, rtol=0)
    weights = {0: torch.eye(heads)[:1], scorer.num_layers - 1: torch.ones(1, heads)}
    torch.testing.assert_close(scorer.score_heads(batch, baseline, weights)[0],
                               reference_scores(scorer, item, weights), atol=1e-4, rtol=0)


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "gpt2"])
def test_a_padded_batch_of_unequal_items_scores_each_item_as_alone(architecture, tokenizer):
    model = tiny_model(architecture)
    scorer = HeadScorer(model)
    examples = [generate_example(), generate_example(CORPUS[3] + " " + PROMPT, " Rome."),
                generate_example("So: " + PROMPT, " In Rome, the tower is.")]
    items = [make_item(example, tokenizer) for example in examples]
    assert len({item.first_emphasised for item in items}) == 3 and len({len(item.input_ids) for item in items}) == 3
    batch = make_batch(items)
    baseline = scorer.baseline(batch)
    rows = torch.cat([torch.eye(scorer.num_heads), torch.ones(1, scorer.num_heads)])
    batched = scorer.score_layer(batch, baseline, 1, rows)
    gradient, _ = scorer.gradient(batch)
    summed = torch.zeros_like(gradient)
    for index, item in enumerate(items):
        alone = make_batch([item])
        torch.testing.assert_close(baseline.scores[index], scorer.baseline(alone).scores[0], atol=1e-4, rtol=0)
        torch.testing.assert_close(batched[index], reference_scores(scorer, item, {1: rows}), atol=1e-4, rtol=0)
        summed += scorer.gradient(alone)[0]
    torch.testing.assert_close(gradient, summed, atol=1e-4, rtol=1e-3)


def test_gradient_matches_finite_differences(tokenizer):
    scorer = HeadScorer(tiny_model("llama"))
    batch = make_batch([make_item(generate_example(), tokenizer)])
    gradient, unsteered = scorer.gradient(batch)
    assert gradient.shape == (scorer.num_layers, scorer.num_heads)
    baseline = scorer.baseline(batch)
    torch.testing.assert_close(unsteered, baseline.scores, atol=1e-5, rtol=0)
    epsilon = 1e-3
    for layer, head in [(0, 1), (2, 3)]:
        row = torch.zeros(1, scorer.num_heads)
        row[0, head] = epsilon
        shifted = float(scorer.score_layer(batch, baseline, layer, row)[0, 0])
        finite = (shifted - float(baseline.scores[0])) / epsilon
        assert finite == pytest.approx(float(gradient[layer, head]), rel=0.05, abs=1e-3)


def test_grouping_respects_the_budgets(tokenizer):
    items = [make_item(generate_example(answer=" Rome" * n), tokenizer) for n in (1, 2, 3, 4, 5, 6)]
    groups = group_items(items, variants=5, token_budget=400, logit_budget=60)
    assert sorted(item.example_id for group in groups for item in group) == sorted(i.example_id for i in items)
    for group in groups:
        rest = max(len(item.input_ids) - item.first_emphasised for item in group)
        assert len(group) * 5 * rest <= 400 or len(group) == 1
        assert len(group) * 5 * max(item.num_scored_positions for item in group) <= 60 or len(group) == 1


def test_items_longer_than_a_sliding_window_are_not_batched(tokenizer):
    scorer = HeadScorer(tiny_model("gemma3"))  # window of 6 tokens
    items = [make_item(generate_example(answer=" Rome" * n), tokenizer) for n in (1, 2, 3)]
    assert all(len(group) == 1 for group in group_items(items, variants=1, max_columns=scorer.window))
    assert len(group_items(items, variants=1)) < 3


def test_examples_whose_gold_shares_a_first_token_are_skipped_and_other_shared_starts_count_once(tokenizer):
    same_start = Example(id="toy/same", kind="score", prompt=PROMPT, emphasis=(SPAN,), answer=" Rome",
                         candidates=(" Rome", " Rome is"), gold=0)
    kept = make_item(score_example(), tokenizer)  # distinct first tokens: kept, gold's first token first
    rome, paris = (tokenizer(candidate, add_special_tokens=False)["input_ids"][0] for candidate in (" Rome", " Paris"))
    assert kept is not None and kept.targets == (rome, paris) and rome != paris
    assert make_item(same_start, tokenizer) is None
    others_share = Example(id="toy/others", kind="score", prompt=PROMPT, emphasis=(SPAN,), answer=" Paris",
                           candidates=(" Paris", " Rome", " Rome is"), gold=0)
    assert make_item(others_share, tokenizer).targets == (paris, rome)


def test_chat_items_read_the_template_and_answer_without_the_leading_space(chat_tokenizer):
    example = score_example()
    item = make_item(example, chat_tokenizer, chat=True)
    text = chat_tokenizer.decode(item.input_ids)
    assert "<|im_start|>user\nPreviously" in text and text.endswith("<|im_start|>assistant\n")
    assert chat_tokenizer.decode(item.input_ids[item.emphasis_mask]).strip() == example.emphasised()[0].strip()
    assert item.targets[0] == chat_tokenizer("Rome", add_special_tokens=False)["input_ids"][0]
