#!/usr/bin/env bash
# The GPU figures for the README, in one run on a CUDA machine (writes under ${OUT:-artifacts}).
# Needs torch with CUDA and transformers >= 5.24 importable, and this repo's src on PYTHONPATH.
set -u
out=${OUT:-artifacts}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# PASTA against plain and the original approach (the methods this script measured before --methods existed).
methods=plain,pasta,pasta-mask,original-pasta
python3 benchmarks/overhead.py --device cuda --shape llama3-8b --T 4096,16384 --batch 1 --methods "$methods" \
    --json "$out/overhead_cuda_llama3-8b.json" 2>&1 | tee "$out/overhead_cuda_llama3-8b.txt"
python3 benchmarks/overhead.py --device cuda --shape llama-16x16 --T 4096 --batch 1,8 --methods "$methods" \
    --json "$out/overhead_cuda_llama-16x16.json" 2>&1 | tee "$out/overhead_cuda_llama-16x16.txt"
