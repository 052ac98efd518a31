from __future__ import annotations

import math

import pytest

from attnsteer.tasks.text_metrics import (
    first_json_object,
    first_sentence,
    has_gendered_pronoun,
    mentions,
    n_gram_entropy,
    neutralise,
    sentences,
)


def rome_reference(bigram_probs: list[float], trigram_probs: list[float]) -> float:
    """ROME's formula written out: mean of (2/3 * H2, 4/3 * H3), entropies in bits."""
    entropies = [-sum(p * math.log2(p) for p in probs) for probs in (bigram_probs, trigram_probs)]
    return (2 / 3 * entropies[0] + 4 / 3 * entropies[1]) / 2


def test_n_gram_entropy_matches_romes_formula():
    # bigrams (a,b) x2, (b,a) x1; trigrams (a,b,a), (b,a,b)
    assert n_gram_entropy("A b, a B.") == pytest.approx(rome_reference([2 / 3, 1 / 3], [1 / 2, 1 / 2]))
    assert n_gram_entropy("one two three four") == pytest.approx(rome_reference([1 / 3] * 3, [1 / 2] * 2))


def test_n_gram_entropy_of_repetition_and_short_texts():
    assert n_gram_entropy("Rome Rome Rome Rome Rome") == 0.0
    assert n_gram_entropy("") == 0.0
    assert n_gram_entropy("two words") == 0.0  # one bigram (entropy 0), no trigram


def test_mentions_whole_words_any_case():
    assert mentions("They speak FRENCH there.", "French")
    assert not mentions("Frenchman", "French")
    assert mentions("in New York City", "New York")
    assert mentions("written in C++ today", "C++")


def test_first_sentence_and_sentences():
    assert first_sentence("  They are a nurse. He works") == "They are a nurse"
    assert first_sentence("Line one\nline two") == "Line one"
    assert first_sentence("Really? yes") == "Really"
    assert first_sentence("   ") == ""
    assert first_sentence(". They") == ""
    assert sentences("A b. C d! E f? G") == ["A b.", "C d!", "E f?", "G"]


@pytest.mark.parametrize(
    ("text", "gendered"),
    [("The theme is there.", False), ("Then he left", True), ("HIS book", True), ("she'd go", True),
     ("Herself", True), ("the hero, Hershey", False), ("They them their", False), ("", False)],
)
def test_gendered_pronouns(text, gendered):
    assert has_gendered_pronoun(text) is gendered


def test_neutralise():
    assert neutralise("She is a nurse. He was kind to her.") == "They are a nurse. They were kind to them."
    assert neutralise("Her work made him proud of his team and hers.") == (
        "Their work made them proud of their team and theirs."
    )
    assert neutralise("The theme himself") == "The theme themselves"
    assert not has_gendered_pronoun(neutralise("She said he knew her and his wife herself."))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "A", "occupation": "nurse"}', {"name": "A", "occupation": "nurse"}),
        ('Sure! {"a": 1} and then {"b": 2}', {"a": 1}),
        ('{"outer": {"inner": 1}} trailing }', {"outer": {"inner": 1}}),
        ('{"name": , "occupation": ,} then {"name": "B"}', {"name": "B"}),
        ('{"text": "has } and { inside"}', {"text": "has } and { inside"}),
        ('{"name": "A", "occupation": "nur', None),
        ("no json here", None),
        ("", None),
    ],
)
def test_first_json_object(text, expected):
    assert first_json_object(text) == expected
