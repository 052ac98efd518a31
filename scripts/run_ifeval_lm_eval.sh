#!/usr/bin/env bash
# IFEval on the embedded model through lm-eval's own ifeval task and checker (task ifeval_local: the
# prompts from ../shared/data, offline): zero-shot, PASTA-steered on the instruction sentences, and the
# instruction sentences marked with *...* (not steered). Raw lm-eval outputs go to docs/results/ifeval_lm_eval/.
# Bounded for a 2-core CPU: LIMIT prompts (the file's first), MAX_GEN_TOKS new tokens, greedy.
set -euo pipefail
LIMIT=${LIMIT:-32}
MAX_GEN_TOKS=${MAX_GEN_TOKS:-96}
BATCH=${BATCH:-16}
OUT=${OUT:-docs/results/ifeval_lm_eval}
BIN=${BIN:-.venv/bin}
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
mkdir -p "$OUT"
declare -A RUNS=(
  [zero_shot]="emphasis=none"
  [steered]="emphasis=instruction"
  [marked]="emphasis=instruction,steer=false,mark=star"
)
for name in zero_shot steered marked; do
  echo "== $name: ${RUNS[$name]}" >&2
  start=$(date +%s)
  "$BIN/attnsteer-lm-eval" run --model attnsteer --model_args "${RUNS[$name]}" --tasks ifeval_local \
    --limit "$LIMIT" --batch_size "$BATCH" --gen_kwargs max_gen_toks="$MAX_GEN_TOKS" \
    --output_path "$OUT/$name" --log_samples 2>&1 | tr '\r' '\n' | grep -v 'it/s\]' > "$OUT/$name.log"
  echo "$name: $(( $(date +%s) - start )) s" | tee -a "$OUT/timings.txt" >&2
done
"$BIN/python" scripts/ifeval_lm_eval_table.py "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
