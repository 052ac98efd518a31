"""The `ifeval_local` task's functions: a local data loader, and lm-eval's own IFEval checker.

The checker needs NLTK's punkt_tab data; `ensure_punkt_tab()` installs it offline before lm-eval's
IFEval module is imported (that import would otherwise try to download it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from attnsteer.integrations.ifeval_spans import IFEVAL_FIELDS, read_ifeval_records
from attnsteer.integrations.nltk_data import ensure_punkt_tab

ensure_punkt_tab()

from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results  # noqa: E402

# Registers the model "attnsteer": lm-eval loads this module before it creates the model when the task
# folder itself is given as `--tasks`, so plain `lm_eval run --model attnsteer --tasks <this folder>` works.
import attnsteer.integrations.lm_eval_model  # noqa: E402, F401

DATA_VARIABLE = "ATTNSTEER_IFEVAL_DATA"
PACKAGED_DATA = Path(__file__).resolve().parent / "data" / "ifeval_with_prompt_without_instruction.jsonl"
__all__ = ["agg_inst_level_acc", "load_ifeval", "process_results", "ifeval_data_file"]


def ifeval_data_file(given: str | None = None) -> Path:
    """The IFEval JSONL: `given` (task metadata `ifeval_data`), else $ATTNSTEER_IFEVAL_DATA, else the copy
    shipped in `data/` (the 541 IFEval prompts with `prompt_without_instruction`)."""
    chosen = given or os.environ.get(DATA_VARIABLE)
    path = Path(chosen) if chosen else PACKAGED_DATA
    if not path.is_file():
        from attnsteer.integrations.emphasis_rules import EmphasisRuleError

        raise EmphasisRuleError(
            f"IFEval data file {str(path)!r} not found; pass --metadata '{{\"ifeval_data\": \"PATH\"}}' or set "
            f"{DATA_VARIABLE} to a JSONL file with IFEval's fields (key, prompt, instruction_id_list, kwargs)"
        )
    return path


def load_ifeval(ifeval_data: str | None = None, **metadata: Any) -> dict[str, Any]:
    """{"train": datasets.Dataset} of the IFEval records, in file order (lm-eval's `--limit` takes the first)."""
    import datasets

    records = read_ifeval_records(ifeval_data_file(ifeval_data), IFEVAL_FIELDS)
    return {"train": datasets.Dataset.from_list(records)}
