"""Integrations with other tools: EleutherAI's lm-evaluation-harness (the `attnsteer` model adapter,
emphasis rules, IFEval with emphasised instructions) and the offline NLTK data its IFEval checker needs.

Importing this package imports neither lm-eval nor torch; `attnsteer.integrations.lm_eval_model`
(needs the `attnsteer[lm-eval]` extra) registers the model with lm-eval's registry when imported.
"""

from __future__ import annotations

from attnsteer.integrations.emphasis_rules import EmphasisRule, EmphasisRuleError, parse_emphasis_rule
from attnsteer.integrations.ifeval_spans import IfevalSpans, instruction_spans, load_ifeval_spans

__all__ = [
    "EmphasisRule",
    "EmphasisRuleError",
    "IfevalSpans",
    "instruction_spans",
    "load_ifeval_spans",
    "parse_emphasis_rule",
]
