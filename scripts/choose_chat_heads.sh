#!/usr/bin/env bash
# Choose the chat model's shipped head set on the VALID split (docs/results.md, "The chat model"): candidate
# sets selected from the gradient profile's scores (`attnsteer profile --from-scores`, no rescoring), each
# evaluated with PASTA on the four tasks' valid records through the chat template; the table is then
# written by scripts/combine_eval_results.py. Run after:
#   attnsteer profile --model smollm2-135m-instruct --method gradient --n-train 50 \
#     --out docs/results/profile_smollm2/gradient_heads.json --scores docs/results/profile_smollm2/gradient_scores.json
# Run: bash scripts/choose_chat_heads.sh [valid records per task, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-20}
MODEL=smollm2-135m-instruct
OUT=docs/results/profile_smollm2/valid_choice
BIN=.venv/bin
TASKS=counterfact,biasbios,json_format,pronoun_change
mkdir -p $OUT

candidate() {  # name, then the selection options
  local name=$1; shift
  $BIN/attnsteer profile --model $MODEL --from-scores docs/results/profile_smollm2/gradient_scores.json "$@" \
    --out $OUT/$name.json > $OUT/$name.txt 2>&1
}

evaluate() {  # name method heads alpha [more eval options]
  local name=$1 method=$2 heads=$3 alpha=$4
  shift 4
  $BIN/attnsteer eval --model $MODEL --task $TASKS --method "$method" --heads "$heads" --alpha "$alpha" \
    --split valid --limit "$LIMIT" --batch-size 10 --json $OUT/eval_$name.json "$@" > $OUT/eval_$name.log 2>&1
}

candidate union-top2 --select union --top-k 2
candidate union-top4 --select union --top-k 4
candidate union-top8 --select union --top-k 8
evaluate zero-shot zero-shot all 0.01
evaluate intersection-k128 pasta docs/results/profile_smollm2/gradient_heads.json 0.01
for name in union-top2 union-top4 union-top8; do
  evaluate $name pasta $OUT/$name.json 0.01
done
evaluate all-heads-include pasta all 0.2 --mode include
$BIN/python scripts/combine_eval_results.py --by-file $OUT/eval_*.json | tee $OUT/table.md
