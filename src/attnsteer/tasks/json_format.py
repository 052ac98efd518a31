"""JSON formatting (PASTA section 5): answer a bio's occupation as JSON, the instruction emphasised.

Prompt: ``f"{bio}\\n{instruction}"`` with PASTA's instruction wording; 32 new tokens.
``format_accuracy`` = 1 if the output holds a JSON object with the keys "name" and "occupation"
(see :func:`attnsteer.tasks.text_metrics.first_json_object`: from the first "{" that starts a
parseable object, the shortest such object); ``prediction_accuracy`` = 1 if that object's
occupation (lowercased, stripped, "_" read as " ") equals or contains the gold occupation.
Bios and names: see :mod:`attnsteer.tasks.bios`.
"""

from __future__ import annotations

from attnsteer.tasks.base import Example
from attnsteer.tasks.bios import Bio, BiosTask
from attnsteer.tasks.registry import register_task
from attnsteer.tasks.text_metrics import first_json_object

GENERATION_TOKENS = 32


def instruction_for(name: str) -> str:
    """PASTA's JSON-formatting instruction for a person."""
    return (
        f"Answer the occupation of {name} and generate the answer as json format. "
        'Here is an example: {"name": , "occupation": ,}. Now generate the answer.'
    )


def json_answer(output: str) -> dict | None:
    """The output's JSON object if it is a dict with "name" and "occupation", else None."""
    value = first_json_object(output)
    return value if isinstance(value, dict) and {"name", "occupation"} <= value.keys() else None


@register_task
class JsonFormat(BiosTask):
    """Answer in a requested JSON format."""

    name = "json_format"
    metrics = ("format_accuracy", "prediction_accuracy")
    primary_metrics = metrics
    percent_metrics = frozenset(metrics)

    def build_examples(self, record: Bio) -> list[Example]:
        """One generate example; the instruction is emphasised."""
        answer = f' {{"name": "{record.name}", "occupation": "{record.occupation}"}}'
        return [self.instruction_example(record, instruction_for(record.name), answer, GENERATION_TOKENS)]

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        """``format_accuracy`` and ``prediction_accuracy`` (see the module doc)."""
        answer = json_answer(output)
        if answer is None:
            return {"format_accuracy": 0.0, "prediction_accuracy": 0.0}
        predicted = answer["occupation"]
        gold = example.reference["occupation"].lower().strip()
        right = isinstance(predicted, str) and gold in predicted.lower().replace("_", " ").strip()
        return {"format_accuracy": 1.0, "prediction_accuracy": float(right)}
