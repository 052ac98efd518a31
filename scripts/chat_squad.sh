#!/usr/bin/env bash
# SQuAD on the chat model (SmolLM2-135M-Instruct) through its chat template: zero-shot, AutoPASTA and LLMSteer.
# Settings are chosen on the valid split's paragraphs (10 paragraphs, 40 questions), never on the ones scored:
# alpha for both methods (0.01, 0.1; the shipped heads) and LLMSteer's k (5%, 10%, 20% of each paragraph's
# tokens), by F1. The test split's first LIMIT paragraphs (about 3 questions each) are then scored with them.
#
# usage: scripts/chat_squad.sh [LIMIT=20]        outputs: $OUT (docs/results/context_eval_smollm2)
set -euo pipefail
LIMIT=${1:-20}
OUT=${OUT:-docs/results/context_eval_smollm2}
BIN=${BIN:-.venv/bin}
MODEL=smollm2-135m-instruct
mkdir -p "$OUT"
run() { "$BIN/attnsteer" eval --task squad --model "$MODEL" --chat on "$@" 2>&1 | tr '\r' '\n' | grep -v '%|'; }

for fraction in 0.05 0.1 0.2; do
  run --method llmsteer --split valid --alpha 0.01,0.1 --top-fraction "$fraction" \
    --json "$OUT/valid_llmsteer_k$fraction.json" > "$OUT/valid_llmsteer_k$fraction.txt"
done
run --method zero-shot,autopasta --split valid --alpha 0.01,0.1 --json "$OUT/valid_autopasta.json" \
  > "$OUT/valid_autopasta.txt"

# The best valid F1 per method: prints "<method> <alpha> <fraction>" lines into $OUT/chosen.txt.
"$BIN/python" - "$OUT" > "$OUT/chosen.txt" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
best = {}
for path in sorted(out.glob("valid_*.json")):
    report = json.loads(path.read_text())
    fraction = next((run["config"].get("llmsteer_top_fraction") for run in report["runs"]
                     if run["method"] == "llmsteer"), None)
    for point in report["sweeps"]["alpha_sweep"]:
        key = point["method"]
        score = point["metrics"]["f1"]
        if key not in best or score > best[key][0]:
            best[key] = (score, point["alpha"], fraction)
for method, (score, alpha, fraction) in sorted(best.items()):
    print(method, alpha, fraction if fraction is not None else "-", f"valid_f1={score:.2f}")
EOF
cat "$OUT/chosen.txt"
read -r _ AUTOPASTA_ALPHA _ _ < <(grep '^autopasta ' "$OUT/chosen.txt")
read -r _ LLMSTEER_ALPHA LLMSTEER_FRACTION _ < <(grep '^llmsteer ' "$OUT/chosen.txt")

run --method zero-shot,autopasta --split test --limit "$LIMIT" --alpha "$AUTOPASTA_ALPHA" \
  --json "$OUT/test_autopasta.json" > "$OUT/test_autopasta.txt"
run --method llmsteer --split test --limit "$LIMIT" --alpha "$LLMSTEER_ALPHA" \
  --top-fraction "$LLMSTEER_FRACTION" --json "$OUT/test_llmsteer.json" > "$OUT/test_llmsteer.txt"
tail -n 12 "$OUT/test_autopasta.txt" "$OUT/test_llmsteer.txt"
