"""The batch decoder: rows with different emphasis/alpha/heads (or none) batched = each row alone = Steerer."""

from __future__ import annotations

import pytest

from attnsteer import Steerer
from attnsteer.heads.head_config import HeadConfig
from attnsteer.server.engine import BatchGenerator, Finished, GenerationJob, TextDelta
from attnsteer.server.prompts import PreparedPrompt
from attnsteer.spans import resolve_emphasis
from attnsteer.steering.config import RowSteering, SteeringConfig
from tests.tiny_models import tiny_model

PROMPTS = [
    ("Previously, The Eiffel Tower is located in Paris. Currently, The Eiffel Tower is located in Rome.", "Rome"),
    ("The Eiffel Tower is located in the city of Paris, the capital of France.", "the capital of France"),
    ("She is a nurse who works at the hospital.", None),
]
STEERINGS = [RowSteering(HeadConfig.parse("1", 3, 4), SteeringConfig(0.01)),
             RowSteering(HeadConfig.parse("0.1,2.3"), SteeringConfig(0.3, "include")), None]


def prepared(tokenizer, text: str, emphasis: str | None, steering: RowSteering | None) -> PreparedPrompt:
    marked = resolve_emphasis(text, emphasis)
    encoded = tokenizer(marked.text, return_offsets_mapping=True)
    mask = [any(span.overlaps(s, e) for span in marked.spans) and s < e for s, e in encoded["offset_mapping"]]
    return PreparedPrompt(marked.text, encoded["input_ids"], mask, steering)


def run(generator: BatchGenerator, rows: list[PreparedPrompt], max_tokens: int = 8) -> list[tuple[str, Finished]]:
    events = [[] for _ in rows]
    jobs = [GenerationJob(row, max_tokens, events[i].append) for i, row in enumerate(rows)]
    generator.run(jobs)
    results = []
    for row_events in events:
        assert isinstance(row_events[-1], Finished)
        results.append(("".join(e.text for e in row_events if isinstance(e, TextDelta)), row_events[-1]))
    return results


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_mixed_batch_equals_rows_alone_and_the_steerer(architecture, tokenizer):
    model = tiny_model(architecture)
    generator = BatchGenerator(model, tokenizer)
    rows = [prepared(tokenizer, text, emphasis, steering)
            for (text, emphasis), steering in zip(PROMPTS, STEERINGS, strict=True)]
    batched = run(generator, rows)
    alone = [run(generator, [row])[0] for row in rows]
    assert [text for text, _ in batched] == [text for text, _ in alone]
    for (text, emphasis), steering, (served, end) in zip(PROMPTS, STEERINGS, batched, strict=True):
        steerer = Steerer(model, tokenizer, heads=steering.heads if steering else "0",
                          alpha=steering.config.alpha if steering else 0.01,
                          mode=steering.config.mode if steering else "exclude")
        expected = steerer.generate(text, emphasize=emphasis, max_new_tokens=8, steer=steering is not None)
        assert served == expected
        assert end.prompt_tokens == len(tokenizer(text)["input_ids"])
        assert end.reason == ("length" if end.completion_tokens == 8 else "stop")


def test_steering_changes_the_row(tokenizer):
    generator = BatchGenerator(tiny_model("llama"), tokenizer)
    text, emphasis = PROMPTS[0]
    strong = RowSteering(HeadConfig.parse("all", 3, 4), SteeringConfig(0.0001))
    rows = [prepared(tokenizer, text, emphasis, strong), prepared(tokenizer, text, None, None)]
    steered, plain = run(generator, rows, max_tokens=12)
    assert steered[0] != plain[0]


def test_cancelled_rows_stop_and_others_finish(tokenizer):
    generator = BatchGenerator(tiny_model("llama"), tokenizer)
    events = [[], []]
    rows = [prepared(tokenizer, PROMPTS[i][0], None, None) for i in range(2)]
    jobs = [GenerationJob(row, 6, events[i].append) for i, row in enumerate(rows)]
    jobs[0].cancelled.set()
    generator.run(jobs)
    assert events[0] == []
    assert isinstance(events[1][-1], Finished)
