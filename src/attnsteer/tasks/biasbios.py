"""BiasBios occupation classification (PASTA section 5), with the bio's first sentence emphasised.

The first sentence states the occupation ("Mary Smith is a nurse."); the rest of the bio may
suggest another one or carry gender stereotypes. Prompt: ``f"{bio}\\n{name}'s occupation is"``;
candidates: every occupation (" " + occupation, no article); ``accuracy`` = 1 if the candidate
with the highest length-normalised log-prob (sum / tokens) is the gold one, ``accuracy_sum`` the
same with the raw sum. Bios and names: see :mod:`attnsteer.tasks.bios`.
"""

from __future__ import annotations

from collections.abc import Sequence

from attnsteer.spans import CharSpan
from attnsteer.tasks.base import Example, check_logprobs
from attnsteer.tasks.bios import Bio, BiosTask
from attnsteer.tasks.registry import register_task


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


@register_task
class BiasBios(BiosTask):
    """Predict a person's occupation from a bio whose first sentence states it."""

    name = "biasbios"
    metrics = ("accuracy", "accuracy_sum")
    primary_metrics = ("accuracy",)
    percent_metrics = frozenset(metrics)

    def build_examples(self, record: Bio) -> list[Example]:
        """One score example over all candidate occupations."""
        return [Example(
            id=f"biasbios/{record.key}",
            kind="score",
            prompt=f"{record.text}\n{record.name}'s occupation is",
            emphasis=(CharSpan(0, record.first_sentence_end),),
            answer=" " + record.occupation,
            candidates=tuple(" " + occupation for occupation in self.occupations),
            gold=self.occupations.index(record.occupation),
            reference={"name": record.name, "occupation": record.occupation},
        )]

    def score_metrics(self, example: Example, logprobs: Sequence[tuple[float, int]]) -> dict[str, float]:
        """``accuracy`` (argmax of mean log-prob per token is gold) and ``accuracy_sum`` (of the sum)."""
        pairs = check_logprobs(example, logprobs)
        normalised = _argmax([total / count for total, count in pairs])
        raw = _argmax([total for total, _ in pairs])
        return {"accuracy": float(normalised == example.gold), "accuracy_sum": float(raw == example.gold)}
