"""`attnsteer-lm-eval`: lm-eval's own command line with the `attnsteer` model registered.

lm-eval 0.4.13 finds models only in its registry, filled from its own name table (no plugin entry
points), so `lm_eval --model attnsteer` needs the registering import to happen first. This command
does that import, installs the offline NLTK data for IFEval, adds attnsteer's task folder
(`ifeval_local`) to `--include_path` unless one is given, and runs lm-eval's unchanged CLI with the
same arguments: `attnsteer-lm-eval run --model attnsteer --tasks ifeval_local ...`
(also `python -m attnsteer.integrations.lm_eval_cli ...`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def lm_eval_arguments(argv: Sequence[str], task_dir: str) -> list[str]:
    """The arguments for lm-eval's CLI: `argv`, plus `--include_path task_dir` for an evaluation run."""
    arguments = list(argv)
    runs = bool(arguments) and (arguments[0] == "run" or arguments[0].startswith("-"))
    asks_help = any(arg in ("-h", "--help") for arg in arguments)
    if runs and not asks_help and "--include_path" not in arguments:
        arguments += ["--include_path", task_dir]
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    import attnsteer.integrations.lm_eval_model  # noqa: F401  (registers the model "attnsteer")
    from attnsteer.integrations.lm_eval_tasks import TASK_DIR
    from attnsteer.integrations.nltk_data import ensure_punkt_tab

    ensure_punkt_tab()
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *lm_eval_arguments(sys.argv[1:] if argv is None else argv, str(TASK_DIR))]
    cli_evaluate()


if __name__ == "__main__":
    main()
