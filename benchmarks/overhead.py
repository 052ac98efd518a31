"""Steering overhead against plain sdpa and against an emulation of the original PASTA code.

A random-weight Llama-shaped model (default: 16 layers x 16 heads, hidden 1024, intermediate 2816,
vocab 32000), 30 heads steered in 10 layers, an emphasised span over 10% of the prompt. For each
prompt length T and batch size B, each implementation runs in a fresh process:
  plain         stock sdpa, nothing steered (the baseline)
  steered       attnsteer (split-heads prefill fast path, bias-as-mask decode)
  steered-mask  attnsteer with the full [B, H, T, S] bias mask at prefill (the path it replaced)
  original      eager attention + a cloned [B, H, T, S] mask per steered layer (benchmarks/original_pasta.py)
and reports the median prefill latency (>= 3 runs after a warm-up), decode tokens/s (128 new tokens
after the prompt, greedy, with the KV cache) and peak memory (CPU: the process's peak RSS from
resource.getrusage; CUDA: torch.cuda.max_memory_allocated), with ratios to plain, and the peak
above what loading the model took (the memory the attention itself adds).

    python benchmarks/overhead.py                 # T in {512, 2048, 4096} x B in {1, 8}
    python benchmarks/overhead.py --quick         # T=2048, B=1; last line: overhead latency=<r> memory=<r>
    python benchmarks/overhead.py --quick --repeat 3   # the README's CPU figures (3 rotated rounds)
    python benchmarks/overhead.py --device cuda --shape llama3-8b --T 4096,16384 --batch 1
Cases whose estimated memory exceeds what the machine has are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPES = {
    "llama-16x16": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 16,
                    "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32000},
    "llama3-8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256},
}
IMPLEMENTATIONS = ("plain", "steered", "steered-mask", "original")


def steered_heads(config) -> dict[int, list[int]]:
    """30 heads in 10 middle layers, 3 per layer."""
    first = config.num_hidden_layers // 2 - 5
    heads = config.num_attention_heads
    return {layer: [0, heads // 3, 2 * heads // 3] for layer in range(first, first + 10)}


def build(shape: str, implementation: str, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=32768)
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    model.set_attn_implementation("eager" if implementation == "original" else "sdpa")
    return model


def inputs(config, length: int, batch: int, device: str):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, config.vocab_size, (batch, length), generator=generator).to(device)
    attention = torch.ones_like(ids)
    emphasis = torch.zeros_like(ids, dtype=torch.bool)
    emphasis[:, length // 4 : length // 4 + max(1, length // 10)] = True
    return ids, attention, emphasis


def steering_block(implementation: str, model, emphasis, attention):
    from original_pasta import original_pasta

    from attnsteer.heads import HeadConfig
    from attnsteer.steering import RowSteering, install, prepare_state, steered

    heads = HeadConfig.from_dict(steered_heads(model.config))
    if implementation == "plain":
        return nullcontext()
    if implementation == "original":
        return original_pasta(model, heads, emphasis, attention.bool())
    install(model)
    fast = implementation == "steered"
    state = prepare_state(model, RowSteering(heads), emphasis, attention.bool(), fast_prefill=fast)
    return steered(model, state)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(function, device: str) -> float:
    synchronize(device)
    started = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - started


def run_case(implementation: str, shape: str, length: int, batch: int, runs: int, decode_tokens: int,
             device: str) -> dict:
    model = build(shape, implementation, device)
    ids, attention, emphasis = inputs(model.config, length, batch, device)
    loaded = peak_bytes(device)  # weights and start-up: what every implementation pays
    with torch.inference_mode(), ExitStack() as stack:
        stack.enter_context(steering_block(implementation, model, emphasis, attention))

        def prefill():
            return model(input_ids=ids, attention_mask=attention, use_cache=True, logits_to_keep=1)

        def decode():
            output = prefill()
            cache, mask, token = output.cache, attention, output.logits[:, -1:].argmax(-1)
            synchronize(device)
            started = time.perf_counter()
            for _ in range(decode_tokens):
                mask = torch.cat([mask, torch.ones_like(token)], dim=1)
                output = model(input_ids=token, attention_mask=mask, cache=cache, use_cache=True)
                token = output.logits[:, -1:].argmax(-1)
            synchronize(device)
            return time.perf_counter() - started

        timed(prefill, device)  # warm-up
        prefill_seconds = [timed(prefill, device) for _ in range(runs)]
        decode_seconds = [decode() for _ in range(runs)] if decode_tokens else [math.nan]
    peak = peak_bytes(device)
    return {"prefill_s": statistics.median(prefill_seconds),
            "decode_tok_s": batch * decode_tokens / statistics.median(decode_seconds),
            "peak_gib": peak / 2**30, "above_load_gib": (peak - loaded) / 2**30}


def peak_bytes(device: str) -> int:
    """Peak memory so far: CUDA allocations, or the process's peak RSS."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def estimated_gib(implementation: str, shape: str, length: int, batch: int, device: str) -> float:
    """Rough peak: weights + KV cache + the biggest transient attention tensors."""
    config = SHAPES[shape]
    element = 2 if device == "cuda" else 4
    hidden, layers, heads = config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]
    params = layers * (4 * hidden**2 + 3 * hidden * config["intermediate_size"]) + 2 * config["vocab_size"] * hidden
    kv = 2 * layers * batch * length * hidden * element
    scores = batch * heads * length * length
    transient = {"plain": 0, "steered": 0, "steered-mask": scores * 4, "original": scores * (2 * element + 8)}
    return (params * element + kv + transient[implementation] + 8 * batch * length * hidden * element) / 2**30


def available_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.mem_get_info()[1] / 2**30
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def run_in_fresh_process(args, implementation: str, length: int, batch: int) -> dict:
    command = [sys.executable, __file__, "--case", implementation, "--shape", args.shape, "--T", str(length),
               "--batch", str(batch), "--runs", str(args.runs), "--decode-tokens", str(args.decode_tokens),
               "--device", args.device]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="Steering overhead benchmark.")
    parser.add_argument("--quick", action="store_true", help="T=2048, batch 1 only")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-16x16")
    parser.add_argument("--T", default="512,2048,4096")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process (median)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh processes per case, in rotated order (median): evens out a noisy machine")
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.shape, int(args.T), int(args.batch), args.runs,
                                  args.decode_tokens, args.device)))
        return
    if args.quick:
        args.T, args.batch = "2048", "1"
    report(args)


def report(args) -> None:
    implementations = args.implementations.split(",")
    rows = []
    print(f"device={args.device} shape={args.shape} runs={args.runs} repeat={args.repeat} "
          f"decode_tokens={args.decode_tokens}")
    print(f"{'T':>6} {'B':>3} {'implementation':14} {'prefill s':>10} {'x plain':>8} {'decode tok/s':>13} "
          f"{'x plain':>8} {'peak GiB':>9} {'x plain':>8} {'above load GiB':>15}", flush=True)
    for length in map(int, args.T.split(",")):
        for batch in map(int, args.batch.split(",")):
            results = measure_setting(args, implementations, length, batch)
            for implementation in implementations:
                rows.append({"T": length, "batch": batch, "implementation": implementation, **results[implementation]})
                print_row(length, batch, implementation, results[implementation], results.get("plain"))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    summarize(rows)


def measure_setting(args, implementations: list[str], length: int, batch: int) -> dict[str, dict]:
    """Each implementation `--repeat` times in fresh processes, the order rotated each round; medians."""
    samples: dict[str, list[dict]] = {name: [] for name in implementations}
    for round_index in range(args.repeat):
        shift = round_index % len(implementations)
        for implementation in implementations[shift:] + implementations[:shift]:
            need = estimated_gib(implementation, args.shape, length, batch, args.device)
            if need > (0.9 if args.device == "cuda" else 0.8) * available_gib(args.device):
                samples[implementation].append({"error": f"skipped: needs about {need:.0f} GiB"})
            else:
                samples[implementation].append(run_in_fresh_process(args, implementation, length, batch))
    return {name: median_result(results) for name, results in samples.items()}


def median_result(results: list[dict]) -> dict:
    measured = [result for result in results if "error" not in result]
    if not measured:
        return results[0]
    return {key: statistics.median(result[key] for result in measured) for key in measured[0]}


def print_row(length: int, batch: int, implementation: str, result: dict, plain: dict | None) -> None:
    if "error" in result:
        print(f"{length:>6} {batch:>3} {implementation:14} {result['error']}", flush=True)
        return

    def ratio(key: str) -> str:
        return f"{result[key] / plain[key]:8.2f}" if plain and "error" not in plain else f"{'-':>8}"

    print(f"{length:>6} {batch:>3} {implementation:14} {result['prefill_s']:10.3f} {ratio('prefill_s')} "
          f"{result['decode_tok_s']:13.1f} {ratio('decode_tok_s')} {result['peak_gib']:9.2f} {ratio('peak_gib')} "
          f"{result.get('above_load_gib', math.nan):15.3f}", flush=True)


def summarize(rows: list[dict]) -> None:
    """The last line: steered / plain at T=2048, batch 1 (or the first measured setting)."""
    def find(implementation: str, length: int, batch: int) -> dict | None:
        return next((r for r in rows if (r["implementation"], r["T"], r["batch"]) == (implementation, length, batch)
                     and "error" not in r), None)

    settings = [(2048, 1)] + [(r["T"], r["batch"]) for r in rows]
    for length, batch in settings:
        plain, steered = find("plain", length, batch), find("steered", length, batch)
        if plain and steered:
            print(f"at T={length}, B={batch}: decode tokens/s steered / plain = "
                  f"{steered['decode_tok_s'] / plain['decode_tok_s']:.3f}")
            print(f"overhead latency={steered['prefill_s'] / plain['prefill_s']:.3f} "
                  f"memory={steered['peak_gib'] / plain['peak_gib']:.3f}")
            return


if __name__ == "__main__":
    main()
