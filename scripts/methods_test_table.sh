#!/usr/bin/env bash
# Issue 15's test-split table for one embedded model (docs/results.md, "Steering methods on the test split"):
# strengths chosen on the valid split first (SPA's tried there once), then one process per task, two side by
# side with one thread each, then the merged table. The chat model reuses its Table 1 baselines (same split,
# limit and template); Gemma runs its own.
# Run: bash scripts/methods_test_table.sh smollm2-135m-instruct|gemma-3-270m-q4_k_m [records per task, default 30]
#        [extra options, e.g. --without-spa]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1
LIMIT=${2:-30}
EXTRA=("${@:3}")
OUT=docs/results/methods
run() {  # task
  local baseline=()
  if [ "$MODEL" = smollm2-135m-instruct ]; then baseline=(--baseline docs/results/eval_smollm2/$1.json); fi
  OMP_NUM_THREADS=1 .venv/bin/python scripts/methods_test_table.py --model "$MODEL" --limit "$LIMIT" --tasks "$1" \
    "${baseline[@]}" "${EXTRA[@]}" > $OUT/test_$MODEL.$1.log 2>&1
}
OMP_NUM_THREADS=2 .venv/bin/python scripts/methods_test_table.py --model "$MODEL" --limit "$LIMIT" --tasks "" "${EXTRA[@]}"
run counterfact & run json_format & wait
run pronoun_change & run biasbios & wait
.venv/bin/python scripts/methods_test_table.py --model "$MODEL" --limit "$LIMIT" --merge
