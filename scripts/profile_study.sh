#!/usr/bin/env bash
# The head-profiling study on the embedded model (docs/results.md, "Head profiling"): profile with each
# method (the three run side by side), evaluate each selected set on the test split against zero-shot, the
# provisional default and all heads, and compare the methods' rankings. Outputs: docs/results/profile/.
# Run: bash scripts/profile_study.sh [n-train per task, default 20] [eval records per task, default 25]
set -euo pipefail
cd "$(dirname "$0")/.."
N_TRAIN=${1:-20}
LIMIT=${2:-25}
OUT=docs/results/profile
BIN=.venv/bin
TASKS=counterfact,biasbios,json_format,pronoun_change
mkdir -p $OUT

profile() {  # method
  /usr/bin/time -f "wall %e s" $BIN/attnsteer profile --method "$1" --n-train "$N_TRAIN" \
    --out $OUT/$1_heads.json --scores $OUT/$1_scores.json --plot $OUT/$1 > $OUT/$1_run.txt 2>&1
}

evaluate() {  # name method [heads]
  $BIN/attnsteer eval --task $TASKS --method "$2" ${3:+--heads "$3"} --limit "$LIMIT" --batch-size 16 \
    --json $OUT/eval_$1.json --markdown $OUT/eval_$1.md > $OUT/eval_$1.txt 2>&1
}

profile gradient & profile coarse-to-fine & profile exhaustive &
evaluate zero-shot zero-shot
evaluate provisional pasta 11.2
evaluate all-heads pasta all
wait
for method in gradient coarse-to-fine exhaustive; do
  evaluate $method pasta $OUT/${method}_heads.json
done
$BIN/python scripts/compare_profiles.py $OUT > $OUT/comparison.md
cat $OUT/comparison.md
