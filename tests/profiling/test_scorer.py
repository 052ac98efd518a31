"""The profiling scorer's reuse (prefix cache, replayed lower layers) changes no score."""

from __future__ import annotations

import pytest
import torch

from attnsteer.profiling.items import item_scores, make_item
from attnsteer.profiling.scorer import HeadScorer
from attnsteer.spans import CharSpan
from attnsteer.steering.install import installed
from attnsteer.steering.state import activate
from attnsteer.tasks import Example
from tests.tiny_models import CORPUS, tiny_model

PROMPT = CORPUS[0] + " " + CORPUS[1]
SPAN = CharSpan(PROMPT.index("Currently"), PROMPT.index("Rome.") + 5)


def score_example(tokenizer) -> Example:
    return Example(id="toy/score", kind="score", prompt=PROMPT, emphasis=(SPAN,), answer=" Rome",
                   candidates=(" Rome", " Paris"), gold=0)


def generate_example(tokenizer) -> Example:
    return Example(id="toy/generate", kind="generate", prompt=PROMPT, emphasis=(SPAN,),
                   answer=" The tower is in Rome.", max_new_tokens=8)


def reference_scores(scorer, item, weights):
    """Full sequence, no reuse: the plain steered forward the scorer must reproduce."""
    rows = next(iter(weights.values())).shape[0]
    state = scorer._state(item, weights)
    with torch.inference_mode(), installed(scorer.model), activate(state):
        logits = scorer.model(input_ids=item.input_ids[None].expand(rows, -1),
                              logits_to_keep=item.num_scored_positions).logits
    return item_scores(item, logits)


@pytest.mark.parametrize("architecture", ["llama", "gemma3", "mistral", "gpt2"])
@pytest.mark.parametrize("make_example", [score_example, generate_example])
def test_reuse_matches_the_full_steered_forward(architecture, make_example, tokenizer):
    model = tiny_model(architecture)
    scorer = HeadScorer(model)
    item = make_item(make_example(tokenizer), tokenizer)
    assert item is not None and item.first_emphasised > 0
    baseline = scorer.baseline(item)
    heads = scorer.num_heads
    with torch.inference_mode():
        logits = model(input_ids=item.input_ids[None], logits_to_keep=item.num_scored_positions).logits
    plain = item_scores(item, logits)
    assert baseline.score == pytest.approx(float(plain[0]), abs=1e-4)
    rows = torch.cat([torch.eye(heads), torch.ones(1, heads)])
    for layer in (0, scorer.num_layers - 1):
        got = scorer.score_layer(item, baseline, layer, rows)
        torch.testing.assert_close(got, reference_scores(scorer, item, {layer: rows}), atol=1e-4, rtol=0)
    weights = {0: torch.eye(heads)[:1], scorer.num_layers - 1: torch.ones(1, heads)}
    torch.testing.assert_close(scorer.score_heads(item, baseline, weights), reference_scores(scorer, item, weights),
                               atol=1e-4, rtol=0)


def test_gradient_matches_finite_differences(tokenizer):
    model = tiny_model("llama")
    scorer = HeadScorer(model)
    item = make_item(generate_example(tokenizer), tokenizer)
    gradient, unsteered = scorer.gradient(item)
    assert gradient.shape == (scorer.num_layers, scorer.num_heads)
    baseline = scorer.baseline(item)
    assert unsteered == pytest.approx(baseline.score, abs=1e-5)
    epsilon = 1e-3
    for layer, head in [(0, 1), (2, 3)]:
        row = torch.zeros(1, scorer.num_heads)
        row[0, head] = epsilon
        shifted = float(scorer.score_layer(item, baseline, layer, row)[0])
        assert (shifted - baseline.score) / epsilon == pytest.approx(float(gradient[layer, head]), rel=0.05, abs=1e-3)


def test_examples_whose_candidates_share_a_first_token_are_skipped(tokenizer):
    example = score_example(tokenizer)
    same_start = Example(id="toy/same", kind="score", prompt=PROMPT, emphasis=(SPAN,), answer=" Rome",
                         candidates=(" Rome", " Rome is"), gold=0)
    assert make_item(example, tokenizer) is not None
    assert make_item(same_start, tokenizer) is None
