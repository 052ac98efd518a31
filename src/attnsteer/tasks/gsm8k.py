"""GSM8K grade-school maths (the LLMSteer paper's GSM8K task): exact match of the final number.

Records are the 1,319 test problems of openai/grade-school-math (packaged). Prompt:
``f"Question: {question}\\nAnswer:"``, 48 new tokens, greedy. The context (what LLMSteer caches and
AutoPASTA reads, ``reference["context_end"]`` characters) is ``"Question: {question}\\n"``; the query
is ``"Answer:"``. The emphasised span (for the ``pasta`` method) is the question's last sentence
(the thing asked). The demo answer (few-shot) is the reference solution with its calculator
annotations ``<<...>>`` removed and "The answer is N." at the end.
The prediction is the last number in the output before a new "Question:"; ``accuracy`` = 1 when it
equals the reference's final number (the text after "#### ", commas removed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from attnsteer.tasks.base import Example, Task, TaskDataError, parse_jsonl, read_data_text, require
from attnsteer.tasks.registry import register_task
from attnsteer.tasks.squad import sentence_spans

PACKAGED_FILE = "gsm8k_test.jsonl"
GENERATION_TOKENS = 48
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CALCULATOR = re.compile(r"<<[^>]*>>")


@dataclass(frozen=True)
class Problem:
    index: int
    question: str
    solution: str
    final: str


def parse_number(text: str) -> float | None:
    """A number written with optional commas ("1,200", "-3.5"), or None."""
    try:
        return float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None


def final_number(output: str) -> float | None:
    """The last number in ``output`` before the model starts a new "Question:" (None if none)."""
    answer = output.split("Question:")[0]
    numbers = [parse_number(match) for match in _NUMBER.findall(answer)]
    numbers = [number for number in numbers if number is not None]
    return numbers[-1] if numbers else None


@register_task
class Gsm8k(Task):
    """Solve a grade-school word problem; the final number counts."""

    name = "gsm8k"
    metrics = ("accuracy",)
    primary_metrics = metrics
    percent_metrics = frozenset(metrics)
    packaged_split_sizes = (100, 100)

    def load_records(self, data_file: str | Path | None) -> list[Problem]:
        text, label = read_data_text(data_file, PACKAGED_FILE)
        problems = []
        for line, record in parse_jsonl(text, label):
            where = f"{label} line {line}"
            question = require(record, "question", str, where)
            solution = require(record, "answer", str, where)
            final = solution.rsplit("####", 1)[-1].strip() if "####" in solution else ""
            if parse_number(final) is None:
                raise TaskDataError(f"{where}: field 'answer' must end with '#### <number>', got {solution[-40:]!r}")
            problems.append(Problem(len(problems), question.strip(), solution, final))
        if not problems:
            raise TaskDataError(f"{label}: no problems")
        return problems

    def build_examples(self, record: Problem) -> list[Example]:
        context = f"Question: {record.question}\n"
        prompt = context + "Answer:"
        asked = sentence_spans(context)[-1]
        steps = _CALCULATOR.sub("", record.solution.rsplit("####", 1)[0]).strip()
        return [Example(
            id=f"gsm8k/{record.index}", kind="generate", prompt=prompt, emphasis=(asked,),
            answer=f" {steps} The answer is {record.final}.", max_new_tokens=GENERATION_TOKENS,
            reference={"final": record.final, "context_end": len(context), "question": record.question},
        )]

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        predicted = final_number(output)
        return {"accuracy": float(predicted is not None and predicted == parse_number(example.reference["final"]))}
