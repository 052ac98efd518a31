"""`make demo`: the embedded Gemma 3 270M, plain vs steered, on three kinds of emphasis.

1. a knowledge conflict (the new fact is emphasised),
2. an instruction (the instruction is emphasised),
3. a question about a bio (the sentence that answers it is emphasised).
Greedy decoding, the model's shipped default heads, alpha = 0.01.
"""

from __future__ import annotations

import attnsteer
from attnsteer.cli.main import print_comparison

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


def main() -> None:
    model, tokenizer = attnsteer.load_model()
    steerer = attnsteer.Steerer(model, tokenizer)
    for name, prompt in CASES.items():
        print(f"\n== {name} ==\n{prompt}")
        plain = steerer.generate(prompt, max_new_tokens=24, steer=False)
        steered = steerer.generate(prompt, max_new_tokens=24)
        print_comparison(plain, steered, f"heads {steerer.heads}, alpha {steerer.config.alpha}")


if __name__ == "__main__":
    main()
