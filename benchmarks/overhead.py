"""Steering overhead of each steering method against plain sdpa, and against emulations of the original code.

A random-weight Llama-shaped model (default: 16 layers x 16 heads, hidden 1024, intermediate 2816,
vocab 32000), an emphasised span over 10% of the prompt. For each prompt length T and batch size B,
each method (`--methods`) runs in a fresh process:
  plain               stock sdpa, nothing steered (the baseline)
  pasta               attnsteer PASTA, 30 heads in 10 layers (split-heads prefill, bias-as-mask decode)
  pasta-mask          the same with the full [B, H, T, S] bias mask at prefill (the path it replaced)
  original-pasta      eager attention + a cloned [B, H, T, S] mask per steered layer (original_pasta.py)
  instaboost          attnsteer InstABoost, boost 5: every head of every layer (split-heads path)
  spotlight           attnsteer Spotlight, target 0.2, granularity layer (two stock sdpa passes per layer)
  spotlight-head      the same, granularity head
  original-spotlight  IBM's path: eager attention, a hook recomputing each layer's output (original_spotlight.py)
(steered, steered-mask and original are the older names of pasta, pasta-mask and original-pasta), and reports
the median prefill latency (>= 3 runs after a warm-up), decode tokens/s (128 new tokens after the prompt,
greedy, with the KV cache) and peak memory (CPU: the process's peak RSS from resource.getrusage; CUDA:
torch.cuda.max_memory_allocated), with ratios to plain measured in the same run, and the peak above what
loading the model took (the memory the attention itself adds).

    python benchmarks/overhead.py                 # T=2048, B=1: plain, pasta, instaboost, spotlight, spotlight-head
    python benchmarks/overhead.py --methods plain,pasta,pasta-mask,original-pasta --repeat 3   # PASTA vs original
    python benchmarks/overhead.py --methods plain,spotlight,original-spotlight   # Spotlight vs IBM's path
    python benchmarks/overhead.py --T 512,2048,4096 --batch 1,8
    python benchmarks/overhead.py --quick         # a check in under a minute: tiny shape, T=512, one process
    python benchmarks/overhead.py --device cuda --shape llama3-8b --T 4096,16384 --batch 1
The last lines give each method's ratios to plain at the first setting; the very last,
`overhead latency=<r> memory=<r>`, pasta's. Cases whose estimated memory exceeds the machine's are skipped.
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
    "tiny": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 4, "vocab_size": 4096},
    "llama-16x16": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 16,
                    "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 32000},
    "llama3-8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256},
}
METHODS = ("plain", "pasta", "pasta-mask", "original-pasta", "instaboost", "spotlight", "spotlight-head",
           "original-spotlight")
DEFAULT_METHODS = "plain,pasta,instaboost,spotlight,spotlight-head"
OLD_NAMES = {"steered": "pasta", "steered-mask": "pasta-mask", "original": "original-pasta"}
EAGER = ("original-pasta", "original-spotlight")  # the emulations of the original code run eager attention
FORWARD_OPTIONS = {"original-spotlight": {"output_attentions": True}}  # as the reference calls generate


def steered_heads(config) -> dict[int, list[int]]:
    """PASTA's heads: 3 per layer in the 10 middle layers (30 heads; all layers of a shallower model)."""
    first = max(0, config.num_hidden_layers // 2 - 5)
    heads = config.num_attention_heads
    return {layer: [0, heads // 3, 2 * heads // 3] for layer in range(first, min(first + 10, config.num_hidden_layers))}


def method_names(text: str) -> list[str]:
    """--methods: comma-separated names (older names accepted); an unknown one exits naming the allowed."""
    names = [OLD_NAMES.get(name.strip(), name.strip()) for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise SystemExit(f"--methods: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(METHODS)}")
    return names


def build(shape: str, implementation: str, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=32768)
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    model.set_attn_implementation("eager" if implementation in EAGER else "sdpa")
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
    from original_spotlight import original_spotlight

    from attnsteer.heads import HeadConfig
    from attnsteer.steering import RowSteering, install, make_method, prepare_state, steered

    heads = HeadConfig.from_dict(steered_heads(model.config))
    if implementation == "plain":
        return nullcontext()
    if implementation == "original-pasta":
        return original_pasta(model, heads, emphasis, attention.bool())
    if implementation == "original-spotlight":
        return original_spotlight(model, emphasis)
    rows = {"pasta": lambda: RowSteering(heads), "pasta-mask": lambda: RowSteering(heads),
            "instaboost": lambda: make_method("instaboost", model, boost=5.0).row(),
            "spotlight": lambda: make_method("spotlight", model, target=0.2, granularity="layer").row(),
            "spotlight-head": lambda: make_method("spotlight", model, target=0.2, granularity="head").row()}
    install(model)
    fast = implementation != "pasta-mask"
    state = prepare_state(model, rows[implementation](), emphasis, attention.bool(), fast_prefill=fast)
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
    options = FORWARD_OPTIONS.get(implementation, {})
    with torch.inference_mode(), ExitStack() as stack:
        stack.enter_context(steering_block(implementation, model, emphasis, attention))

        def prefill():
            return model(input_ids=ids, attention_mask=attention, use_cache=True, logits_to_keep=1, **options)

        def decode():
            output = prefill()
            cache, mask, token = output.cache, attention, output.logits[:, -1:].argmax(-1)
            synchronize(device)
            started = time.perf_counter()
            for _ in range(decode_tokens):
                mask = torch.cat([mask, torch.ones_like(token)], dim=1)
                output = model(input_ids=token, attention_mask=mask, cache=cache, use_cache=True, **options)
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
    transient = {"plain": 0, "pasta": 0, "pasta-mask": scores * 4, "original-pasta": scores * (2 * element + 8),
                 "instaboost": 0, "spotlight": 0, "spotlight-head": 0,
                 # eager weights kept for every layer (output_attentions) + a clone + float32 log-weights
                 "original-spotlight": scores * (layers * element + element + 8)}
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


def run_in_this_process(args, implementation: str, length: int, batch: int) -> dict:
    """--quick: the case in this process (no interpreter start-up per case). Peak memory is then only measured
    on CUDA (reset per case); a CPU process's peak RSS covers every earlier case, so it is not reported."""
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = run_case(implementation, args.shape, length, batch, args.runs, args.decode_tokens, args.device)
    if args.device != "cuda":
        result.update(peak_gib=math.nan, above_load_gib=math.nan)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Steering overhead benchmark.")
    parser.add_argument("--quick", action="store_true",
                        help="a check in under a minute: the tiny shape, T=512, batch 1, 1 run, 16 decode "
                        "tokens, every case in this process (CPU peak memory then not measured)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-16x16")
    parser.add_argument("--T", default="2048", help="prompt lengths, comma-separated")
    parser.add_argument("--batch", default="1", help="batch sizes, comma-separated")
    parser.add_argument("--methods", "--implementations", dest="methods", default=DEFAULT_METHODS,
                        help=f"comma-separated, from {', '.join(METHODS)} (plain is the ratios' baseline)")
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
        args.shape, args.T, args.batch, args.runs, args.decode_tokens = "tiny", "512", "1", 1, 16
    report(args)


def report(args) -> None:
    implementations = method_names(args.methods)
    rows = []
    print(f"device={args.device} shape={args.shape} runs={args.runs} repeat={args.repeat} "
          f"decode_tokens={args.decode_tokens}")
    print(f"{'T':>6} {'B':>3} {'method':18} {'prefill s':>10} {'x plain':>8} {'decode tok/s':>13} "
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
                run = run_in_this_process if args.quick else run_in_fresh_process
                samples[implementation].append(run(args, implementation, length, batch))
    return {name: median_result(results) for name, results in samples.items()}


def median_result(results: list[dict]) -> dict:
    measured = [result for result in results if "error" not in result]
    if not measured:
        return results[0]
    return {key: statistics.median(result[key] for result in measured) for key in measured[0]}


def print_row(length: int, batch: int, implementation: str, result: dict, plain: dict | None) -> None:
    if "error" in result:
        print(f"{length:>6} {batch:>3} {implementation:18} {result['error']}", flush=True)
        return

    def ratio(key: str) -> str:
        return f"{result[key] / plain[key]:8.2f}" if plain and "error" not in plain else f"{'-':>8}"

    print(f"{length:>6} {batch:>3} {implementation:18} {result['prefill_s']:10.3f} {ratio('prefill_s')} "
          f"{result['decode_tok_s']:13.1f} {ratio('decode_tok_s')} {result['peak_gib']:9.2f} {ratio('peak_gib')} "
          f"{result.get('above_load_gib', math.nan):15.3f}", flush=True)


def summarize(rows: list[dict]) -> None:
    """Each method's ratios to plain at the first measured setting (T=2048, B=1 when measured); the last line,
    `overhead latency=<r> memory=<r>`, pasta's prefill and peak-memory ratios."""
    def find(implementation: str, length: int, batch: int) -> dict | None:
        return next((r for r in rows if (r["implementation"], r["T"], r["batch"]) == (implementation, length, batch)
                     and "error" not in r), None)

    settings = [(2048, 1)] + [(r["T"], r["batch"]) for r in rows]
    for length, batch in settings:
        plain = find("plain", length, batch)
        measured = [r for r in rows if (r["T"], r["batch"]) == (length, batch) and r["implementation"] != "plain"
                    and "error" not in r]
        if plain and measured:
            print(f"at T={length}, B={batch}, x plain (prefill latency, decode tokens/s, peak memory):")
            for row in measured:
                ratios = {key: row[key] / plain[key] for key in ("prefill_s", "decode_tok_s", "peak_gib")}
                print(f"  {row['implementation']:18} prefill {ratios['prefill_s']:.3f}  decode "
                      f"{ratios['decode_tok_s']:.3f}  memory {ratios['peak_gib']:.3f}")
            pasta = find("pasta", length, batch)
            if pasta:
                print(f"overhead latency={pasta['prefill_s'] / plain['prefill_s']:.3f} "
                      f"memory={pasta['peak_gib'] / plain['peak_gib']:.3f}")
            return


if __name__ == "__main__":
    main()
