"""lm-eval task definitions shipped with attnsteer (pass this folder as `--include_path`).

`ifeval_local`: lm-eval's own IFEval task and checker (`lm_eval.tasks.ifeval.utils`), reading the
prompts from a local JSONL file instead of the hub; see `ifeval_local_utils.load_ifeval`.
"""

from __future__ import annotations

from pathlib import Path

TASK_DIR = Path(__file__).resolve().parent

