"""AutoPASTA: per query, the model names the context's key sentence(s); PASTA emphasises them.

1. The plain model reads context + extraction prompt (with the query) and continues; its first
   line should repeat the key sentence.
2. The context's sentences that cover at least `min_overlap` of that line's words (SQuAD
   normalisation) are emphasised, best first, at most `num_sentences`.
3. The context is encoded again with that emphasis and the query answered.
When no sentence qualifies, a warning is logged and the query is answered unsteered (`fell_back`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnsteer.context.config import AutoPastaConfig, ContextError
from attnsteer.context.prepare import prepare_context
from attnsteer.spans import CharSpan
from attnsteer.tasks.squad import normalize_answer, prediction_text, sentence_spans

if TYPE_CHECKING:
    from attnsteer.steerer import Steerer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoPastaAnswer:
    """The answer, the sentences emphasised (empty after a fallback) and the model's extraction."""

    text: str
    sentences: tuple[str, ...]
    extraction: str
    fell_back: bool


def pick_sentences(context: str, extraction: str, config: AutoPastaConfig) -> list[CharSpan]:
    """The spans of the context sentences the extraction names, best overlap first (may be empty)."""
    named = set(normalize_answer(prediction_text(extraction)).split())
    if not named:
        return []
    scored = []
    for span in sentence_spans(context):
        words = set(normalize_answer(context[span.start : span.end]).split())
        overlap = len(named & words) / len(named)
        if overlap >= config.min_overlap:
            scored.append((-overlap, span.start, span))
    return [span for _, _, span in sorted(scored)[: config.num_sentences]]


def extract_sentences(steerer: Steerer, context: str, query: str, config: AutoPastaConfig,
                      chat: bool = False) -> tuple[list[CharSpan], str]:
    """(the chosen sentence spans, the model's raw extraction) for one query (`chat`: the extraction
    prompt ends the user message and the reply is the assistant's)."""
    plain = prepare_context(steerer, context, "plain", chat=chat)
    extraction = plain.generate(config.extraction_prompt.format(query=query.strip()),
                                max_new_tokens=config.extraction_tokens)
    return pick_sentences(context, extraction, config), extraction


def autopasta_generate(steerer: Steerer, context: str, query: str, max_new_tokens: int = 32,
                       config: AutoPastaConfig | None = None, extraction_query: str | None = None,
                       chat: bool = False) -> AutoPastaAnswer:
    """Answer `query` after `context` with the model-chosen sentences emphasised.

    extraction_query: the question put in the extraction prompt (default: `query` itself).
    chat: context + query (and context + extraction prompt) are one user message through the tokenizer's
        chat template (`prepare_context(chat=True)`).
    """
    config = config or AutoPastaConfig()
    if not isinstance(query, str) or not query.strip():
        raise ContextError("the query is empty; give some text")
    spans, extraction = extract_sentences(steerer, context, extraction_query or query, config, chat)
    if not spans:
        logger.warning("AutoPASTA: the model named no sentence of the context (it said %r); answering unsteered",
                       prediction_text(extraction)[:80])
        answer = prepare_context(steerer, context, "plain", chat=chat).generate(query, max_new_tokens=max_new_tokens)
        return AutoPastaAnswer(answer, (), extraction, True)
    steered = prepare_context(steerer, context, "spans", emphasize=[(s.start, s.end) for s in spans], chat=chat)
    answer = steered.generate(query, max_new_tokens=max_new_tokens)
    return AutoPastaAnswer(answer, tuple(context[s.start : s.end] for s in spans), extraction, False)
