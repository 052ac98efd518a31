"""`make demo`: the embedded Gemma 3 270M, plain vs steered, on three kinds of emphasis.

1. a knowledge conflict (the new fact is emphasised),
2. an instruction (the instruction is emphasised),
3. a question about a bio (the sentence that answers it is emphasised).
Greedy decoding, the model's shipped default heads, alpha = 0.01.

Under each comparison the demo measures what steering does inside the model: the share of the last
prompt token's attention that the steered heads give the emphasised text, plain and steered. The
instruction case shows why an output can stay the same while the attention moves.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

import attnsteer
from attnsteer.cli.main import print_comparison
from attnsteer.steering import reading_attention

CASES = {
    "knowledge conflict": (
        "Previously, The Eiffel Tower is located in Paris. **Currently, The Eiffel Tower is located in Rome.** "
        "The Eiffel Tower is located in the city of"
    ),
    "instruction": (
        "Mary Jones has worked as a nurse at Mercy Hospital for ten years and volunteers at a local shelter. "
        "**Answer the occupation of Mary Jones and generate the answer as json format.** Answer:"
    ),
    "bio question": (
        "David Lee grew up in Ohio and studied music in college, where he played the violin. "
        "**Today David Lee is a dentist with a practice in Chicago.** He enjoys hiking with his family. "
        "Question: What is David Lee's occupation? Answer: David Lee is a"
    ),
}


def why_no_json(before: float, after: float) -> str:
    """The instruction case's note when steering leaves the text (without JSON) unchanged."""
    return (
        "Same text both ways, and no JSON, although steering moved the steered heads' attention on the\n"
        f"instruction from {before:.0%} to {after:.0%}: Gemma 3 270M is a base model (not instruction-tuned) and\n"
        "does not write JSON for this prompt whether or not it attends to the instruction. docs/results.md\n"
        "measures this on the json_format task (Table 1 and 'Test split, PASTA with each head set'): no head set\n"
        "makes this model answer in JSON zero-shot, demonstrations (few-shot) do. Steering chooses what the\n"
        "model reads; it does not add a skill the model lacks."
    )


def emphasis_attention(steerer: attnsteer.Steerer, prompt: str, steer: bool) -> float:
    """The mean, over the steered heads, of the share of the last prompt token's attention on the emphasised tokens."""
    encoded = steerer.encode(prompt)
    emphasised = encoded.emphasis_mask[0]
    shares: list[float] = []

    def record(layer: int, probabilities: torch.Tensor) -> None:  # probabilities: [batch, heads, queries, keys]
        shares.extend(float(probabilities[0, head, -1][emphasised].sum()) for head in steerer.heads.heads_in(layer))

    block = steerer.steered(encoded.encodings, encoded.emphasis_mask) if steer else nullcontext()
    with torch.no_grad(), block, reading_attention(steerer.model, record):
        steerer.model(**encoded.encodings)
    return sum(shares) / len(shares)


def main() -> None:
    model, tokenizer = attnsteer.load_model()
    steerer = attnsteer.Steerer(model, tokenizer)
    for name, prompt in CASES.items():
        print(f"\n== {name} ==\n{prompt}")
        plain = steerer.generate(prompt, max_new_tokens=24, steer=False)
        steered = steerer.generate(prompt, max_new_tokens=24)
        print_comparison(plain, steered, f"heads {steerer.heads}, alpha {steerer.config.alpha}")
        before, after = (emphasis_attention(steerer, prompt, steer) for steer in (False, True))
        print(f"attention of the steered heads' last prompt token on the emphasised text: "
              f"plain {before:.0%}, steered {after:.0%}")
        if name == "instruction" and plain == steered and "{" not in steered:
            print(why_no_json(before, after))


if __name__ == "__main__":
    main()
