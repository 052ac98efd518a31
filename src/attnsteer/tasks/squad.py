"""SQuAD v2 reading comprehension (the LLMSteer paper's SQuAD task), answerable questions only.

Records are paragraphs (a paragraph's questions stay in one split, and share its context): the
packaged data is the first two articles of SQuAD v2.0 dev (87 paragraphs with answerable
questions, 293 questions). Prompt: ``f"{context}\\n\\nQuestion: {question}\\nAnswer:"``, 16 new
tokens, greedy. The context (``reference["context_end"]`` characters) is what LLMSteer caches and
AutoPASTA reads; the rest is the query. The emphasised span (for the ``pasta`` method) is the
context sentence holding the first gold answer: an oracle, for comparison.
The prediction is the output's first line, stripped. ``exact_match`` and ``f1`` follow the
official SQuAD v2 evaluation script: normalise (lowercase, drop punctuation, the articles a / an /
the, and extra whitespace), then the best score over the gold answers.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from attnsteer.spans import CharSpan
from attnsteer.tasks.base import Example, Task, TaskDataError, read_data_text, require
from attnsteer.tasks.registry import register_task

PACKAGED_FILE = "squad_v2_dev_2articles.json"
GENERATION_TOKENS = 16
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    lowered = "".join(char for char in text.lower() if char not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised texts (1.0 when both are empty, as the official script)."""
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def sentence_spans(text: str) -> list[CharSpan]:
    """Character spans of ``text``'s sentences (ending at ., ! or ?), surrounding spaces excluded."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append(CharSpan(start, end))
    return spans


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    answer_start: int


@dataclass(frozen=True)
class Paragraph:
    index: int
    title: str
    context: str
    questions: tuple[Question, ...]


@register_task
class Squad(Task):
    """Answer a question about a Wikipedia paragraph with a short span."""

    name = "squad"
    metrics = ("exact_match", "f1")
    primary_metrics = ("f1",)
    percent_metrics = frozenset(metrics)
    packaged_split_sizes = (10, 10)

    def load_records(self, data_file: str | Path | None) -> list[Paragraph]:
        """Paragraphs with at least one answerable question, in file order."""
        text, label = read_data_text(data_file, PACKAGED_FILE)
        try:
            root = json.loads(text)
        except json.JSONDecodeError as err:
            raise TaskDataError(f"{label}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from err
        articles = require(root, "data", list, label)
        paragraphs = []
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(require(article, "paragraphs", list, f"{label} data[{a}]")):
                where = f"{label} data[{a}].paragraphs[{p}]"
                questions = _answerable(require(paragraph, "qas", list, where), where)
                if questions:
                    context = require(paragraph, "context", str, where)
                    paragraphs.append(Paragraph(len(paragraphs), str(article.get("title", "")), context, questions))
        if not paragraphs:
            raise TaskDataError(f"{label}: no paragraph has an answerable question")
        return paragraphs

    def build_examples(self, record: Paragraph) -> list[Example]:
        """One generate example per answerable question of the paragraph."""
        sentences = sentence_spans(record.context)
        examples = []
        for question in record.questions:
            prompt = f"{record.context}\n\nQuestion: {question.question}\nAnswer:"
            oracle = next((s for s in sentences if s.start <= question.answer_start < s.end), sentences[0])
            examples.append(Example(
                id=f"squad/{question.id}", kind="generate", prompt=prompt, emphasis=(oracle,),
                answer=" " + question.answers[0], max_new_tokens=GENERATION_TOKENS,
                reference={"answers": list(question.answers), "context_end": len(record.context),
                           "question": question.question, "paragraph": record.index},
            ))
        return examples

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        """``exact_match`` and ``f1`` of the output's first line against the best gold answer."""
        prediction = prediction_text(output)
        golds = example.reference["answers"]
        return {"exact_match": max(exact_match(prediction, gold) for gold in golds),
                "f1": max(f1_score(prediction, gold) for gold in golds)}


def prediction_text(output: str) -> str:
    """The answer in a generation: its first non-empty line, stripped."""
    lines = [line.strip() for line in output.strip().splitlines()]
    return lines[0] if lines else ""


def _answerable(qas: list, where: str) -> tuple[Question, ...]:
    questions = []
    for q, qa in enumerate(qas):
        if qa.get("is_impossible", False) if isinstance(qa, dict) else False:
            continue
        place = f"{where}.qas[{q}]"
        answers = require(qa, "answers", list, place)
        if not answers:
            continue
        texts = tuple(require(answer, "text", str, f"{place}.answers[{i}]") for i, answer in enumerate(answers))
        start = require(answers[0], "answer_start", int, f"{place}.answers[0]")
        questions.append(Question(require(qa, "id", str, place), require(qa, "question", str, place), texts, start))
    return tuple(questions)
