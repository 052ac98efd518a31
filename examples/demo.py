"""`make demo`: both embedded models, plain vs steered, each line with the command that reproduces it.

Gemma 3 270M (a base model), three kinds of emphasis:
1. a knowledge conflict (the new fact is emphasised),
2. an instruction (the instruction is emphasised),
3. a question about a bio (the sentence that answers it is emphasised).
SmolLM2-135M-Instruct (a chat model, through its chat template): a user message whose instruction to
answer in JSON is emphasised.
Greedy decoding, each model's shipped default heads, alpha = 0.01. The chat model's replies are cut
at 40 new tokens; the demo says whether each holds a JSON object, whole or begun.

Under each comparison the demo measures what steering does inside the model: the share of the last
prompt token's attention that the steered heads give the emphasised text, plain and steered. The
base model's instruction case shows why an output can stay the same while the attention moves.
"""

from __future__ import annotations

import json
import shlex
from contextlib import nullcontext

import torch

import attnsteer
from attnsteer.cli.main import describe_heads, print_comparison
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


CHAT_MODEL = "smollm2-135m-instruct"
CHAT_CASES = {
    "chat: an instruction to answer in JSON": (
        "Mary Jones has worked as a nurse at Mercy Hospital for ten years and volunteers at a local shelter.\n"
        "**Answer the occupation of Mary Jones and generate the answer as json format.**"
    ),
    "chat: the same instruction about another bio": (
        "Tom Baker teaches history at Lincoln High School and coaches the school's chess team.\n"
        "**Answer the occupation of Tom Baker and generate the answer as json format.**"
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


def is_json(text: str) -> bool:
    """Whether the reply holds a JSON object (from its first "{" to its last "}")."""
    start, end = text.find("{"), text.rfind("}")
    try:
        return start >= 0 and isinstance(json.loads(text[start : end + 1]), dict)
    except ValueError:
        return False


def json_in(text: str) -> str:
    """"a whole JSON object", "a JSON object, cut by the token budget" (a '{' then a quoted key) or "none"."""
    if is_json(text):
        return "a whole JSON object"
    start = text.find("{")
    return "a JSON object, cut by the token budget" if start >= 0 and '":' in text[start:] else "none"


def base_model_cases() -> None:
    model, tokenizer = attnsteer.load_model()
    steerer = attnsteer.Steerer(model, tokenizer)
    print("#### Gemma 3 270M (base model) ####")
    for name, prompt in CASES.items():
        print(f"\n== {name} ==\n{prompt}")
        plain = steerer.generate(prompt, max_new_tokens=24, steer=False)
        steered = steerer.generate(prompt, max_new_tokens=24)
        print_comparison(plain, steered, f"heads {steerer.heads}, alpha {steerer.config.alpha}")
        before, after = (emphasis_attention(steerer, prompt, steer) for steer in (False, True))
        print(f"attention of the steered heads' last prompt token on the emphasised text: "
              f"plain {before:.0%}, steered {after:.0%}")
        print("reproduce: " + shlex.join(["attnsteer", "generate", prompt, "--max-new-tokens", "24", "--compare"]))
        if name == "instruction" and plain == steered and "{" not in steered:
            print(why_no_json(before, after))


def chat_model_cases() -> None:
    model, tokenizer = attnsteer.load_model(CHAT_MODEL)
    steerer = attnsteer.Steerer(model, tokenizer)
    print(f"\n#### SmolLM2-135M-Instruct (chat model, {CHAT_MODEL}) ####")
    for name, user in CHAT_CASES.items():
        messages = [{"role": "user", "content": user}]
        print(f"\n== {name} ==\nuser: {user}")
        plain, steered = (steerer.chat(messages, max_new_tokens=40, steer=steer) for steer in (False, True))
        print_comparison(plain, steered, f"{describe_heads(steerer.heads)} (its shipped set), alpha "
                                         f"{steerer.config.alpha}")
        print(f"JSON in the reply: plain {json_in(plain)}; steered {json_in(steered)}")
        print("reproduce: " + shlex.join(["attnsteer", "chat", "--model", CHAT_MODEL, "--user", user,
                                          "--max-new-tokens", "40", "--compare"]))


def main() -> None:
    base_model_cases()
    chat_model_cases()


if __name__ == "__main__":
    main()
