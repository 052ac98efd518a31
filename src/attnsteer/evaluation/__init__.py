"""Evaluation: the paper's tasks under its baselines and PASTA, with tables, JSON and sweeps."""

from attnsteer.evaluation.methods import METHODS, expand_methods, render
from attnsteer.evaluation.report import results_json, results_markdown, results_table, write_json
from attnsteer.evaluation.runner import EvalResult, evaluate
from attnsteer.evaluation.sweeps import EvaluationReport, ranked_heads, run_evaluation

__all__ = [
    "METHODS", "EvalResult", "EvaluationReport", "evaluate", "expand_methods", "ranked_heads", "render",
    "results_json", "results_markdown", "results_table", "run_evaluation", "write_json",
]
