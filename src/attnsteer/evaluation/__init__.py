"""Evaluation: the paper's tasks under its baselines and PASTA, with tables, JSON and sweeps."""

from attnsteer.evaluation.methods import (
    EvalMethod,
    UnknownMethodError,
    expand_methods,
    get_method,
    method_names,
    register_method,
    render,
)
from attnsteer.evaluation.report import results_json, results_markdown, results_table, write_json
from attnsteer.evaluation.runner import EvalResult, evaluate
from attnsteer.evaluation.sweeps import EvaluationReport, ranked_heads, run_evaluation

__all__ = [
    "EvalMethod", "EvalResult", "EvaluationReport", "UnknownMethodError", "evaluate", "expand_methods", "get_method",
    "method_names", "ranked_heads", "register_method", "render", "results_json", "results_markdown", "results_table",
    "run_evaluation", "write_json",
]
