#!/usr/bin/env bash
# The chat model's profiles with the two other methods (docs/results.md, "The chat model"): coarse-to-fine and
# exhaustive through the chat template, one after the other, then their rankings compared with the gradient
# profile that chose the shipped heads (docs/results/profile_smollm2/gradient_scores.json). The shipped set is
# not changed by these runs (it was chosen on the valid split from the gradient profile).
# Run: bash scripts/profile_chat_model.sh [n-train per task, default 10]     outputs: docs/results/profile_smollm2/
set -euo pipefail
cd "$(dirname "$0")/.."
N_TRAIN=${1:-10}
OUT=docs/results/profile_smollm2
BIN=.venv/bin
for method in coarse-to-fine exhaustive; do
  /usr/bin/time -f "wall %e s" $BIN/attnsteer profile --model smollm2-135m-instruct --method $method \
    --n-train "$N_TRAIN" --k-grid 2,4,8,16,32,64,128 --out $OUT/${method}_heads.json --scores $OUT/${method}_scores.json \
    2>&1 | tr '\r' '\n' | grep -v 'step/s\|it/s\|s/it\|s/step' > $OUT/${method}_run.txt
done
$BIN/python scripts/compare_profiles.py $OUT > $OUT/comparison.md
cat $OUT/comparison.md
