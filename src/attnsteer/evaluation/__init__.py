"""Evaluation: the paper's tasks under its baselines and PASTA, with tables, JSON and sweeps.

Names load lazily (`attnsteer.lazy`): checking a method name imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnsteer.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["EvalMethod", "UnknownMethodError", "expand_methods", "get_method", "method_names",
                     "register_method", "render"], "attnsteer.evaluation.methods"),
    **dict.fromkeys(["results_json", "results_markdown", "results_table", "steering_summary", "write_json"],
                    "attnsteer.evaluation.report"),
    **dict.fromkeys(["EvalResult", "evaluate"], "attnsteer.evaluation.runner"),
    **dict.fromkeys(["EvaluationReport", "ranked_heads", "run_evaluation"], "attnsteer.evaluation.sweeps"),
}
__all__ = ["EvalMethod", "EvalResult", "EvaluationReport", "UnknownMethodError", "evaluate", "expand_methods",
    "get_method", "method_names", "ranked_heads", "register_method", "render", "results_json", "results_markdown",
    "results_table", "run_evaluation", "steering_summary", "write_json"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from attnsteer.evaluation.methods import (
        EvalMethod,
        UnknownMethodError,
        expand_methods,
        get_method,
        method_names,
        register_method,
        render,
    )
    from attnsteer.evaluation.report import (
        results_json,
        results_markdown,
        results_table,
        steering_summary,
        write_json,
    )
    from attnsteer.evaluation.runner import EvalResult, evaluate
    from attnsteer.evaluation.sweeps import EvaluationReport, ranked_heads, run_evaluation
