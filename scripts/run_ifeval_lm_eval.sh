#!/usr/bin/env bash
# IFEval through lm-eval's own ifeval task and checker (task ifeval_local: the prompts from ../shared/data,
# offline): zero-shot, PASTA-steered on the instruction sentences, and the instruction sentences marked
# with *...* (not steered); with RUNS, also InstABoost and Spotlight (per head, per layer) on the same
# sentences. Bounded for a 2-core CPU: LIMIT prompts (the file's first), MAX_GEN_TOKS new tokens, greedy.
#
# usage: [MODEL=...] [HEADS=...] [ALPHA=...] [MODE=...] [RUNS=...] scripts/run_ifeval_lm_eval.sh [lm-eval args ...]
#   MODEL  the adapter's pretrained= (an embedded model's name, a directory or a hub id); unset: the
#          embedded Gemma 3 270M with its shipped heads (the runs in docs/results/ifeval_lm_eval/)
#   HEADS, ALPHA, MODE  the adapter's heads= (`+` between pairs), alpha=, mode=; unset: its defaults
#   RUNS   which runs (default: zero_shot steered marked); also instaboost, spotlight_head, spotlight_layer,
#          at strengths BOOST, HEAD_TARGET, LAYER_TARGET (unset: the methods' defaults)
#   further arguments go to lm-eval unchanged, e.g. --apply_chat_template --system_instruction "..."
# e.g. MODEL=smollm2-135m-instruct HEADS=all ALPHA=0.2 MODE=include scripts/run_ifeval_lm_eval.sh --apply_chat_template
# Raw lm-eval outputs go to OUT: docs/results/ifeval_lm_eval, with _$MODEL and _chat appended when given.
set -euo pipefail
LIMIT=${LIMIT:-32}
MAX_GEN_TOKS=${MAX_GEN_TOKS:-96}
BATCH=${BATCH:-16}
MODEL=${MODEL:-}
BIN=${BIN:-.venv/bin}
suffix=${MODEL:+_$MODEL}
for arg in "$@"; do
  if [[ "$arg" == --apply_chat_template* ]]; then suffix="${suffix}_chat"; fi
done
OUT=${OUT:-docs/results/ifeval_lm_eval$suffix}
common="${MODEL:+pretrained=$MODEL,}${HEADS:+heads=$HEADS,}${ALPHA:+alpha=$ALPHA,}${MODE:+mode=$MODE,}"
profiling_free="${MODEL:+pretrained=$MODEL,}emphasis=instruction,"  # PASTA's HEADS / ALPHA / MODE do not apply
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
mkdir -p "$OUT"
declare -A RUN_ARGS=(
  [zero_shot]="${common}emphasis=none"
  [steered]="${common}emphasis=instruction"
  [marked]="${common}emphasis=instruction,steer=false,mark=star"
  [instaboost]="${profiling_free}method=instaboost${BOOST:+,boost=$BOOST}"
  [spotlight_head]="${profiling_free}method=spotlight,granularity=head${HEAD_TARGET:+,target=$HEAD_TARGET}"
  [spotlight_layer]="${profiling_free}method=spotlight,granularity=layer${LAYER_TARGET:+,target=$LAYER_TARGET}"
)
for name in ${RUNS:-zero_shot steered marked}; do
  echo "== $name: ${RUN_ARGS[$name]}${*:+ $*}" >&2
  start=$(date +%s)
  "$BIN/attnsteer-lm-eval" run --model attnsteer --model_args "${RUN_ARGS[$name]}" --tasks ifeval_local \
    --limit "$LIMIT" --batch_size "$BATCH" --gen_kwargs max_gen_toks="$MAX_GEN_TOKS" \
    --output_path "$OUT/$name" --log_samples "$@" 2>&1 | tr '\r' '\n' | grep -v 'it/s\]' > "$OUT/$name.log"
  echo "$name: $(( $(date +%s) - start )) s" | tee -a "$OUT/timings.txt" >&2
done
"$BIN/python" scripts/ifeval_lm_eval_table.py "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
