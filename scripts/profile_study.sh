#!/usr/bin/env bash
# The head-profiling study on the embedded model (docs/results.md, "Head profiling"): profile with each
# method, evaluate each selected set on the test split against zero-shot, the provisional default and all
# heads, and compare the methods' rankings. Outputs go to docs/results/profile/.
# Run: bash scripts/profile_study.sh [eval-limit]   (records per task for the evaluations; default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-50}
OUT=docs/results/profile
BIN=.venv/bin
TASKS=counterfact,biasbios,json_format,pronoun_change
mkdir -p $OUT

profile() {  # method
  TQDM_DISABLE=1 /usr/bin/time -f "wall %e s" $BIN/attnsteer profile --method "$1" --n-train 50 --out $OUT/$1_heads.json \
    --scores $OUT/$1_scores.json --plot $OUT/$1 2>&1 | tee $OUT/$1_run.txt
}

evaluate() {  # name method heads
  TQDM_DISABLE=1 $BIN/attnsteer eval --task $TASKS --method "$2" ${3:+--heads "$3"} --limit "$LIMIT" --batch-size 16 \
    --json $OUT/eval_$1.json --markdown $OUT/eval_$1.md 2>&1 | tee $OUT/eval_$1.txt
}

profile gradient
profile coarse-to-fine
evaluate zero-shot zero-shot
evaluate provisional pasta 11.2
evaluate gradient pasta $OUT/gradient_heads.json
evaluate coarse-to-fine pasta $OUT/coarse-to-fine_heads.json
evaluate all-heads pasta all
profile exhaustive
evaluate exhaustive pasta $OUT/exhaustive_heads.json
$BIN/python scripts/compare_profiles.py $OUT | tee $OUT/comparison.md
