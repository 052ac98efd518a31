"""An emulation of IBM's Spotlight implementation path (agent-lifecycle-toolkit, altk/pre_llm/spotlight), written
from its description, as the cost baseline for attnsteer's `spotlight` (`overhead.py --methods ...,original-spotlight`).

The model runs eager attention and is called with output_attentions=True; a forward hook on every layer's
self-attention takes the layer's attention weights [batch, heads, queries, keys] and, per batch row, computes the
span's current share = attention mass on the span / all attention mass (over heads and queries). Below the target
p it adds log(p / share) to log(weights + 1e-10) on the span's keys, re-softmaxes, multiplies with the layer's
value states (from the KV cache, repeated for grouped-query heads) and projects with o_proj: the layer's output is
computed twice. attnsteer's granularity "layer" is the same rule on the stock sdpa kernel (steering/spotlight.py).

Run alone, it checks the emulation against attnsteer (max |logit difference| at prefill and over a few cached
decoding steps, fp32) and times one prefill of each:

    python benchmarks/original_spotlight.py --quick          # tiny random Llama, T=256 (well under a minute)
    python benchmarks/original_spotlight.py --shape llama-16x16 --T 2048
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attnsteer.steering.installation import attention_layers  # noqa: E402

TARGET = 0.2  # Spotlight's default target share


@contextmanager
def original_spotlight(model, emphasis_mask: torch.Tensor, target: float = TARGET) -> Iterator[None]:
    """emphasis_mask: [batch, prompt tokens] bool. The model must run eager attention.

    One token goes through the model first, as through a model that has served requests before: transformers
    installs its output-capturing hooks at the first forward, so (as in the reference's steady state) they see
    each layer's eager weights before this hook replaces them, and output_attentions=True keeps them all.
    """
    with torch.inference_mode():
        model(input_ids=torch.ones_like(emphasis_mask[:1, :1], dtype=torch.long))
    handles = [layer.register_forward_hook(_make_hook(emphasis_mask, target), with_kwargs=True)
               for layer in attention_layers(model).values()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _make_hook(emphasis_mask: torch.Tensor, target: float):
    def hook(module, args, kwargs, output):
        weights = output[1]  # [batch, heads, queries, keys]
        if weights is None:
            raise RuntimeError("original_spotlight needs eager attention (the layer returned no attention weights)")
        modified = weights.clone()
        for row in range(weights.shape[0]):
            span = _span_row(emphasis_mask[row], weights.shape[-1], weights)
            share = (modified[row] * span).sum() / modified[row].sum()
            if share < target:
                logits = torch.log(modified[row] + 1e-10) + span * torch.log(target / share)
                modified[row] = F.softmax(logits, dim=-1, dtype=torch.float32).to(weights.dtype)
        values = _value_states(module, args, kwargs)
        batch, _, queries, _ = modified.shape
        recomputed = torch.matmul(modified, values).transpose(1, 2).reshape(batch, queries, -1)
        return module.o_proj(recomputed), None

    return hook


def _span_row(emphasis_row: torch.Tensor, keys: int, like: torch.Tensor) -> torch.Tensor:
    """[keys] 1.0 on the emphasised prompt tokens (generated tokens are never in the span)."""
    span = torch.zeros(keys, dtype=like.dtype, device=like.device)
    prompt = min(keys, emphasis_row.shape[0])
    span[:prompt] = emphasis_row[:prompt].to(like.dtype)
    return span


def _value_states(module, args, kwargs) -> torch.Tensor:
    """[batch, heads, keys, head dim]: the cache's values for this layer (the new ones already appended), or the
    layer's own values without a cache; repeated for grouped-query heads."""
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if cache is not None:
        values = cache.layers[module.layer_idx].values
    else:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        values = module.v_proj(hidden).view(*hidden.shape[:-1], -1, module.head_dim).transpose(1, 2)
    return values.repeat_interleave(module.num_key_value_groups, dim=1)


def compare(shape: str, length: int, decode_steps: int) -> None:
    """Max |logit difference| between the emulation and attnsteer's spotlight (layer), and one prefill's time each."""
    from overhead import build, inputs

    from attnsteer.heads import HeadConfig
    from attnsteer.steering import RowSteering, SpotlightTarget, install, prepare_state, steered

    eager, stock = build(shape, "original-spotlight", "cpu"), build(shape, "plain", "cpu")
    install(stock)
    ids, attention, emphasis = inputs(stock.config, length, 1, "cpu")
    row = RowSteering(HeadConfig(()), spotlight=SpotlightTarget(TARGET, "layer"))
    with torch.inference_mode(), original_spotlight(eager, emphasis):
        original, original_s = _greedy(eager, ids, decode_steps, output_attentions=True)
    state = prepare_state(stock, row, emphasis, attention.bool())
    with torch.inference_mode(), steered(stock, state):
        ours, ours_s = _greedy(stock, ids, decode_steps)
    with torch.inference_mode():
        plain = _greedy(stock, ids, 0)[0]
    print(f"shape={shape} T={length} target={TARGET}")
    print(f"prefill s: original emulation {original_s:.3f}, attnsteer {ours_s:.3f} (x{original_s / ours_s:.2f})")
    steps = [float((a - b).abs().max()) for a, b in zip(original, ours, strict=True)]
    print(f"max |logit diff| original vs attnsteer: prefill {steps[0]:.2e}, decode steps {max(steps[1:] or [0]):.2e}; "
          f"steering moved the prefill logits by {float((original[0] - plain[0]).abs().max()):.2e}")


def _greedy(model, ids: torch.Tensor, steps: int, **kwargs) -> tuple[list[torch.Tensor], float]:
    """The last-position logits of the prefill and of `steps` cached greedy steps; the prefill's seconds."""
    started = time.perf_counter()
    output = model(input_ids=ids, use_cache=True, logits_to_keep=1, **kwargs)
    seconds = time.perf_counter() - started
    logits = [output.logits[:, -1].float()]
    for _ in range(steps):
        token = logits[-1].argmax(-1, keepdim=True)
        output = model(input_ids=token, cache=output.cache, use_cache=True, **kwargs)
        logits.append(output.logits[:, -1].float())
    return logits, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="IBM Spotlight's path (emulated) against attnsteer's spotlight.")
    parser.add_argument("--quick", action="store_true", help="the tiny shape, T=256")
    parser.add_argument("--shape", default="llama-16x16")
    parser.add_argument("--T", type=int, default=2048)
    parser.add_argument("--decode-steps", type=int, default=4)
    args = parser.parse_args()
    if args.quick:
        args.shape, args.T = "tiny", 256
    compare(args.shape, args.T, args.decode_steps)


if __name__ == "__main__":
    main()
