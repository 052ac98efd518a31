#!/usr/bin/env bash
# The PASTA paper's Table 1 on the chat model (docs/results.md, "The chat model"): test split, through the
# chat template, the prompting baselines and PASTA with the model's shipped (profiled) heads, one JSON per
# method group, merged into one table.
# Run: bash scripts/chat_table1.sh [records per task, default 40] [baselines|pasta|table|all, default all]
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-40}
PART=${2:-all}
MODEL=smollm2-135m-instruct
OUT=docs/results/eval_smollm2
BIN=.venv/bin
TASKS=counterfact,biasbios,json_format,pronoun_change
mkdir -p $OUT

evaluate() {  # name methods [more eval options]
  local name=$1 methods=$2
  shift 2
  $BIN/attnsteer eval --model $MODEL --task $TASKS --method "$methods" --limit "$LIMIT" --batch-size 10 \
    --json $OUT/$name.json --markdown $OUT/$name.md "$@" > $OUT/$name.log 2>&1
}

# The baselines steer nothing: --heads all only satisfies the Steerer the runner builds.
if [[ $PART == baselines || $PART == all ]]; then evaluate baselines zero-shot,marked,few-shot --heads all; fi
if [[ $PART == pasta || $PART == all ]]; then evaluate pasta pasta; fi
if [[ $PART == table || $PART == all ]]; then
  $BIN/python scripts/combine_eval_results.py $OUT/baselines.json $OUT/pasta.json | tee $OUT/table.md
fi
