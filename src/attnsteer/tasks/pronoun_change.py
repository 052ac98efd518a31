"""Pronoun changing (PASTA section 5): rewrite a bio with "they", the instruction emphasised.

Prompt: ``f"{bio}\\n{instruction}"`` with PASTA's instruction wording; 48 new tokens. Gendered
pronouns are she, he, her, him, his, hers, herself, himself (whole words, any case; "The" is not
"he"). ``accuracy`` = 1 if the output's first sentence (the stripped output up to the first ".",
"!", "?" or newline) is non-empty and has no gendered pronoun; ``all_changed_accuracy`` = 1 if the
whole output is non-empty and has none. The demo answer is the bio's first two sentences with the
pronouns neutralised (a heuristic, :func:`attnsteer.tasks.text_metrics.neutralise`).
Bios and names: see :mod:`attnsteer.tasks.bios`.
"""

from __future__ import annotations

from attnsteer.tasks.base import Example
from attnsteer.tasks.bios import Bio, BiosTask
from attnsteer.tasks.registry import register_task
from attnsteer.tasks.text_metrics import first_sentence, has_gendered_pronoun, neutralise, sentences

GENERATION_TOKENS = 48


def instruction_for(name: str) -> str:
    """PASTA's pronoun-changing instruction for a person."""
    return f"Substitute 'she' and 'he' with 'they' and generate the occupation of {name} after changing pronouns."


@register_task
class PronounChange(BiosTask):
    """Rewrite the bio with gender-neutral pronouns."""

    name = "pronoun_change"
    metrics = ("accuracy", "all_changed_accuracy")
    primary_metrics = metrics
    percent_metrics = frozenset(metrics)

    def build_examples(self, record: Bio) -> list[Example]:
        """One generate example; the instruction is emphasised."""
        answer = " " + neutralise(" ".join(sentences(record.text)[:2]))
        return [self.instruction_example(record, instruction_for(record.name), answer, GENERATION_TOKENS)]

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        """``accuracy`` (first sentence) and ``all_changed_accuracy`` (whole output); empty scores 0."""
        first = first_sentence(output)
        return {
            "accuracy": float(bool(first) and not has_gendered_pronoun(first)),
            "all_changed_accuracy": float(bool(output.strip()) and not has_gendered_pronoun(output)),
        }
