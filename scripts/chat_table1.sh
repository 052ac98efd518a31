#!/usr/bin/env bash
# The PASTA paper's Table 1 on the chat model (docs/results.md, "The chat model"): test split, through the
# chat template, the prompting baselines and PASTA with the model's shipped (profiled) heads. One process per
# task, run side by side with one thread each (more threads per process oversubscribe the cores), one JSON
# each; then one merged table. The first 30 test records per task by default (a CPU-time choice).
# Run: bash scripts/chat_table1.sh [records per task, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-30}
MODEL=smollm2-135m-instruct
OUT=docs/results/eval_smollm2
BIN=.venv/bin
mkdir -p $OUT

evaluate() {  # task limit
  OMP_NUM_THREADS=1 $BIN/attnsteer eval --model $MODEL --task "$1" --method zero-shot,marked,few-shot,pasta --limit "$2" \
    --batch-size 10 --json $OUT/$1.json --markdown $OUT/$1.md > $OUT/$1.log 2>&1
}

evaluate json_format "$LIMIT" & evaluate pronoun_change "$LIMIT" &
evaluate biasbios "$LIMIT" & evaluate counterfact "$LIMIT" &
wait
$BIN/python scripts/combine_eval_results.py $OUT/json_format.json $OUT/pronoun_change.json $OUT/biasbios.json \
  $OUT/counterfact.json | tee $OUT/table.md
