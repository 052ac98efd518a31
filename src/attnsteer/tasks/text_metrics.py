"""Text helpers behind the task metrics: n-gram entropy, mentions, sentences, JSON, pronouns."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

_WORD = re.compile(r"\w+")
_GENDERED = re.compile(r"\b(she|he|her|him|his|hers|herself|himself)\b", re.IGNORECASE)
_FIRST_SENTENCE_END = re.compile(r"[.!?\n]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_NEUTRAL = {"she": "they", "he": "they", "him": "them", "his": "their", "hers": "theirs",
            "herself": "themselves", "himself": "themselves"}
_AGREEMENT = re.compile(r"\b(they|They)\s+(is|was|has|does)\b")
_PLURAL_VERB = {"is": "are", "was": "were", "has": "have", "does": "do"}


def n_gram_entropy(text: str, ns: tuple[int, ...] = (2, 3), weights: tuple[float, ...] = (2 / 3, 4 / 3)) -> float:
    """ROME's ``compute_n_gram_entropy`` (the fluency metric of ROME and PASTA), without numpy.

    Tokens are the lowercased ``\\w+`` words (ROME used nltk's tokenizer). For each n, the entropy
    in bits of the n-gram frequency distribution; the result is the mean of ``weight * entropy``.
    A text with no n-grams of some size contributes 0 for that size (ROME gives nan).
    """
    tokens = [word.lower() for word in _WORD.findall(text)]
    weighted = []
    for n, weight in zip(ns, weights, strict=True):
        counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        total = sum(counts.values())
        entropy = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        weighted.append(weight * entropy)
    return sum(weighted) / len(weighted)


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(phrase.strip())}(?!\w)", text, re.IGNORECASE) is not None


def remove_mentions(text: str, phrase: str) -> str:
    """``text`` with every whole-word, case-insensitive occurrence of ``phrase`` removed."""
    return re.sub(rf"(?<!\w){re.escape(phrase.strip())}(?!\w)", " ", text, flags=re.IGNORECASE)


def first_sentence(text: str) -> str:
    """``text`` stripped, up to (not including) the first ``.``, ``!``, ``?`` or newline, stripped."""
    stripped = text.strip()
    match = _FIRST_SENTENCE_END.search(stripped)
    return (stripped[: match.start()] if match else stripped).strip()


def sentences(text: str) -> list[str]:
    """``text`` split after each ``.``, ``!`` or ``?`` that is followed by whitespace."""
    return [part for part in _SENTENCE_BREAK.split(text.strip()) if part]


def has_gendered_pronoun(text: str) -> bool:
    """Whether ``text`` has she/he/her/him/his/hers/herself/himself as a whole word (any case)."""
    return _GENDERED.search(text) is not None


def _neutral_word(match: re.Match[str]) -> str:
    word = match.group(0)
    lower = word.lower()
    if lower == "her":  # object "them" before punctuation or at the end, else possessive "their"
        rest = match.string[match.end() :].lstrip()
        neutral = "them" if not rest or not rest[0].isalnum() else "their"
    else:
        neutral = _NEUTRAL[lower]
    return neutral.capitalize() if word[0].isupper() else neutral


def neutralise(text: str) -> str:
    """``text`` with gendered pronouns replaced by they/them/their (a heuristic, for demo answers).

    "her" becomes "them" before punctuation or at the end and "their" otherwise; "they is/was/has/
    does" becomes "they are/were/have/do". Other verbs are left as they are.
    """
    replaced = _GENDERED.sub(_neutral_word, text)
    return _AGREEMENT.sub(lambda m: f"{m.group(1)} {_PLURAL_VERB[m.group(2)]}", replaced)


def first_json_object(text: str) -> Any | None:
    """The first JSON value found in ``text`` that starts at a ``{`` (None if there is none).

    From each ``{`` in order, the shortest ``{...}`` that ``json.loads`` parses is taken; the
    first ``{`` that starts such a text wins (so an unparseable template before the answer is
    skipped, and a nested object is returned whole).
    """
    starts = [i for i, char in enumerate(text) if char == "{"]
    ends = [i for i, char in enumerate(text) if char == "}"]
    for start in starts:
        for end in ends:
            if end <= start:
                continue
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                continue
    return None
