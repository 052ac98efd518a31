"""Steering on an accelerator: the bias path against the explicit reference, on CUDA.

For each tiny architecture (tests/tiny_models.py) on the given device, in float32: max |logit diff|
between steered (sdpa and eager paths) and the softmax-reweight reference, and cached greedy
generation against full recomputation (Llama and the sliding-window architectures). Prints one
line per check and a final `device_check ok=<n>/<total>` line. Run: python benchmarks/device_check.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.steering.reference import ReferenceSpec, multiplier, reference_steering  # noqa: E402
from tests.steering.test_equivalence import HEADS, PROMPTS, encode, steer  # noqa: E402
from tests.steering.test_generation_and_threads import cached_generate, recomputed_generate  # noqa: E402
from tests.tiny_models import ARCHITECTURES, SLIDING_WINDOW_ARCHITECTURES, tiny_model, tiny_tokenizer  # noqa: E402

from attnsteer import SteeringConfig  # noqa: E402


def check(name: str, implementation: str, device: str, tokenizer) -> float:
    model = tiny_model(name, implementation).to(device)
    enc, emphasis = encode(tokenizer, PROMPTS)
    enc = {key: value.to(device) for key, value in enc.items()}
    emphasis = emphasis.to(device)
    mask = enc["attention_mask"].bool()
    with torch.no_grad(), steer(model, HEADS, emphasis, mask, SteeringConfig()):
        steered = model(**enc).logits
    spec = ReferenceSpec(HEADS, multiplier(emphasis, mask, 0.01).to(device))
    with torch.no_grad(), reference_steering(model, spec):
        reference = model(**enc).logits
    return float((steered - reference)[mask].abs().max())


def check_generation(name: str, device: str, tokenizer) -> bool:
    model = tiny_model(name).to(device)
    enc, emphasis = encode(tokenizer, PROMPTS)
    enc = {key: value.to(device) for key, value in enc.items() if key != "position_ids"}
    cached, cached_logits = cached_generate(model, enc, emphasis.to(device))
    recomputed, recomputed_logits = recomputed_generate(model, enc, emphasis.to(device))
    return bool(torch.equal(cached, recomputed)) and float((cached_logits - recomputed_logits).abs().max()) <= 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    tokenizer = tiny_tokenizer()
    passed = total = 0
    for name in sorted(ARCHITECTURES):
        for implementation in ("sdpa", "eager"):
            diff = check(name, implementation, args.device, tokenizer)
            total += 1
            passed += diff <= 1e-4
            print(f"{args.device} {name:11s} {implementation:5s} max|steered - reference| = {diff:.2e}", flush=True)
    for name in ("llama", *SLIDING_WINDOW_ARCHITECTURES):
        same = check_generation(name, args.device, tokenizer)
        total += 1
        passed += same
        print(f"{args.device} {name:11s} cached generate == recomputation: {same}", flush=True)
    print(f"device_check ok={passed}/{total}")


if __name__ == "__main__":
    main()
