"""CounterFact knowledge conflicts (PASTA section 5): does the model follow the new fact in context?

Each record (ROME format) gives a fact "{subject} {relation} {true target}" and a rewrite to a new
target. The context states both: ``"Previously, {fact} {true}. Currently, {fact} {new}."``; the
"Currently, ..." sentence is emphasised. Per record:

- one ``rewrite`` score example (the fact prompt again; candidates " new", " true"; metric
  ``efficacy`` = 1 if the new target's summed log-prob beats the true target's);
- one ``paraphrase`` score example per paraphrase prompt (metric ``paraphrase``, same rule);
- one generate example on the first generation prompt (30 new tokens): ``fluency`` is ROME's
  n-gram entropy of the generated text, and ``consistency`` is 1 if the generation mentions the
  new target (whole words, any case) and not the true target (after removing mentions of the new
  one), else 0. PASTA measured consistency as TF-IDF similarity to Wikipedia texts about the new
  target, which are not available here; this mention rule replaces it, so the numbers are not
  comparable with the paper's.

Packaged data: 500 records; splits (seed 0) train 100, valid 100, test 300 records. The prompt and
the seed-0 permutation match ``scripts/measure_provisional_heads.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsteer.spans import CharSpan
from attnsteer.tasks.base import (
    Example,
    Task,
    TaskDataError,
    check_logprobs,
    parse_json_list,
    read_data_text,
    require,
)
from attnsteer.tasks.registry import register_task
from attnsteer.tasks.text_metrics import mentions, n_gram_entropy, remove_mentions

PACKAGED_FILE = "counterfact_500.json"
GENERATION_TOKENS = 30


@dataclass(frozen=True)
class Rewrite:
    """The fields of one CounterFact record that the task uses."""

    key: str
    fact: str
    new: str
    true: str
    paraphrases: tuple[str, ...]
    generation_prompt: str | None


def _optional_prompts(record: dict, key: str, where: str) -> tuple[str, ...]:
    if key not in record:
        return ()
    prompts = require(record, key, list, where)
    for j, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskDataError(f"{where}: field '{key}[{j}]' must be a non-empty string, got {prompt!r}")
    return tuple(prompts)


def parse_rewrite(record: Any, index: int, label: str) -> Rewrite:
    """Validate one record; errors name the index, the case_id when present, and the field."""
    case_id = record.get("case_id") if isinstance(record, dict) else None
    where = f"{label} record {index}" + (f" (case_id {case_id})" if case_id is not None else "")
    rewrite = require(record, "requested_rewrite", dict, where)
    template = require(rewrite, "prompt", str, where, "requested_rewrite.prompt")
    subject = require(rewrite, "subject", str, where, "requested_rewrite.subject")
    targets = {}
    for side in ("target_new", "target_true"):
        target = require(rewrite, side, dict, where, f"requested_rewrite.{side}")
        targets[side] = require(target, "str", str, where, f"requested_rewrite.{side}.str").strip()
    if template.count("{}") != 1:
        raise TaskDataError(f"{where}: field 'requested_rewrite.prompt' must contain '{{}}' once, got {template!r}")
    generation = _optional_prompts(record, "generation_prompts", where)
    return Rewrite(
        key=str(case_id if case_id is not None else index),
        fact=template.replace("{}", subject).strip(),
        new=targets["target_new"],
        true=targets["target_true"],
        paraphrases=_optional_prompts(record, "paraphrase_prompts", where),
        generation_prompt=generation[0].strip() if generation else None,
    )


@register_task
class CounterFact(Task):
    """CounterFact with both facts in context and the new one emphasised."""

    name = "counterfact"
    metrics = ("efficacy", "paraphrase", "fluency", "consistency")
    primary_metrics = ("efficacy", "paraphrase")
    percent_metrics = frozenset({"efficacy", "paraphrase", "consistency"})
    packaged_split_sizes = (100, 100)

    def load_records(self, data_file: str | Path | None) -> list[Rewrite]:
        """The ROME-format JSON list, validated; case_ids (or indices) must be unique."""
        text, label = read_data_text(data_file, PACKAGED_FILE)
        rewrites = [parse_rewrite(record, i, label) for i, record in enumerate(parse_json_list(text, label))]
        seen: set[str] = set()
        for index, rewrite in enumerate(rewrites):
            if rewrite.key in seen:
                raise TaskDataError(f"{label} record {index}: case_id {rewrite.key} is not unique")
            seen.add(rewrite.key)
        return rewrites

    def build_examples(self, record: Rewrite) -> list[Example]:
        """The rewrite, paraphrase and generation examples of one record, in that order."""
        emphasised = f"Currently, {record.fact} {record.new}."
        context = f"Previously, {record.fact} {record.true}. {emphasised}"
        span = (CharSpan(context.index(emphasised), len(context)),)
        reference = {"case_id": record.key, "target_new": record.new, "target_true": record.true}
        candidates = (" " + record.new, " " + record.true)
        questions = [("rewrite", "efficacy", record.fact)]
        questions += [(f"paraphrase/{j}", "paraphrase", p) for j, p in enumerate(record.paraphrases)]
        examples = [
            Example(id=f"counterfact/{record.key}/{suffix}", kind="score", prompt=f"{context} {question}",
                    emphasis=span, answer=" " + record.new, candidates=candidates, gold=0,
                    reference={**reference, "metric": metric})
            for suffix, metric, question in questions
        ]
        if record.generation_prompt is not None:
            examples.append(Example(
                id=f"counterfact/{record.key}/generate", kind="generate",
                prompt=f"{context} {record.generation_prompt}", emphasis=span, answer=f" {record.new}.",
                max_new_tokens=GENERATION_TOKENS, reference=reference,
            ))
        return examples

    def score_metrics(self, example: Example, logprobs: Sequence[tuple[float, int]]) -> dict[str, float]:
        """``efficacy`` (rewrite) or ``paraphrase``: 1.0 if sum log P(new) > sum log P(true)."""
        (new, _), (true, _) = check_logprobs(example, logprobs)
        return {example.reference["metric"]: float(new > true)}

    def generation_metrics(self, example: Example, output: str) -> dict[str, float]:
        """``fluency`` (weighted bi/trigram entropy, bits) and ``consistency`` (see the module doc)."""
        new, true = example.reference["target_new"], example.reference["target_true"]
        follows = mentions(output, new) and not mentions(remove_mentions(output, new), true)
        return {"fluency": n_gram_entropy(output), "consistency": float(follows)}
