"""The lm-evaluation-harness model `attnsteer`: any lm-eval task, steered (PASTA) on emphasised prompt text.

Importing this module registers the model in lm-eval's registry (`@register_model("attnsteer")`).
Model arguments (`--model_args key=value,...` or a JSON object):
  pretrained  a model directory or hub id; `embedded`/`default`/unset: the embedded Gemma 3 270M
  heads       a PASTA JSON file, `all`, layers `12+13` or pairs `11.2+12.1` (`+` for `,`, which lm-eval
              splits on; or give a JSON object); unset/`default`: the model's shipped set
  alpha, mode as `attnsteer.SteeringConfig` (default 0.01, exclude)
  emphasis    the rule choosing the emphasised text, see `emphasis_rules` (default `none`)
  steer       false: do not steer (with `mark`, the marked-prompt baseline); default true
  mark        none | star | quote: also wrap the emphasised text in `*...*` / `"..."` in the prompt
  batch_size  rows per forward / generate call (lm-eval's --batch_size). `auto` (and `auto:N`) uses lm-eval's
              --max_batch_size, the cap lm-eval's hf model puts on automatic batch sizes, as the batch size
              (no out-of-memory probing); 8 when it is not given. With a number, max_batch_size is unused,
              as in lm-eval's hf model.
  device      where the model runs (lm-eval's --device, e.g. `cuda:0`), passed to `load_model`; unset: cpu. A
              device torch cannot use here (lm-eval's CLI says `cuda:0` by default) falls back to cpu with a
              warning, as lm-eval's hf model does
  max_gen_toks  the generation length when a task sets none (256)
Requests whose context has no emphasised text under the rule run unsteered; `emphasis_counts` counts them.
Bad model arguments raise `LMEvalArgumentError` (or the config's own error) before the model loads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from attnsteer.errors import AttnsteerError
from attnsteer.evaluation.methods import wrap_spans
from attnsteer.integrations.emphasis_rules import EmphasisRuleError, parse_emphasis_rule
from attnsteer.spans import CharSpan

log = logging.getLogger("lm_eval.attnsteer")  # follows lm-eval's log level and format
MARKS = {"none": None, "star": "*", "quote": '"'}
AUTO_BATCH_SIZE = 8  # `batch_size=auto` without max_batch_size


class LMEvalArgumentError(AttnsteerError):
    """A model argument (`--model_args`, --batch_size, --max_batch_size, --device) of the lm-eval adapter is bad."""


@dataclass
class PreparedContext:
    """A request's context as the model reads it: text (marked if asked) and the spans to steer."""

    text: str
    spans: list[CharSpan]


@register_model("attnsteer")
class AttnsteerLM(LM):
    """lm-eval `LM` running a `Steerer`: log-likelihood and generation requests, batched and steered."""

    def __init__(self, pretrained: str | None = None, heads: Any = None, alpha: float = 0.01, mode: str = "exclude",
                 emphasis: str | None = None, steer: bool = True, mark: str | None = None, batch_size: Any = 8,
                 max_gen_toks: int = 256, device: str | None = None, max_batch_size: Any = None,
                 **unused: Any) -> None:
        super().__init__()
        from attnsteer.models import load_model
        from attnsteer.steerer import Steerer
        from attnsteer.steering.config import SteeringConfig

        self.rule = parse_emphasis_rule(emphasis)
        self.mark = _parse_mark(mark)
        self.steer = _parse_bool(steer, "steer") and self.rule.steers
        self.batch_size = _parse_batch_size(batch_size, max_batch_size)
        self.max_gen_toks = int(max_gen_toks)
        config = SteeringConfig(alpha=_parse_float(alpha, "alpha"), mode=mode)  # type: ignore[arg-type]
        if unused:
            log.warning("attnsteer: ignoring model arguments %s", sorted(unused))
        model, tokenizer = load_model(None if pretrained in (None, "default") else str(pretrained),
                                      device=_resolve_device(device))
        head_spec = None if heads in (None, "default") else str(heads).replace("+", ",")
        self.steerer = Steerer(model, tokenizer, heads=head_spec, config=config, markup=None)
        self.model, self.tokenizer = model, tokenizer
        self.emphasis_counts = {"steered": 0, "unsteered": 0, "no_span": 0}

    # ----- emphasis ------------------------------------------------------------------------------
    def prepare(self, context: str, doc: dict[str, Any] | None) -> PreparedContext:
        """Apply the emphasis rule (and the mark) to one request's context."""
        spans = self.rule.spans(context, doc) if (self.steer or self.mark) else []
        if (self.steer or self.mark) and self.rule.steers and not spans:
            self.emphasis_counts["no_span"] += 1
        if self.mark and spans:
            context, spans = mark_spans(context, spans, self.mark)
        steered = self.steer and bool(spans)
        self.emphasis_counts["steered" if steered else "unsteered"] += 1
        return PreparedContext(context, spans if steered else [])

    # ----- lm-eval API ---------------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(sum log-prob of the continuation in nats, whether it is the greedy continuation) per request."""
        items = [(self.prepare(r.args[0], r.doc), r.args[1]) for r in requests]
        rows = [_move_trailing_space(p, cont) for p, cont in items]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0][0] + rows[i][0][1]))
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        spans = [row_spans for _, row_spans in rows]
        for chunk in tqdm(_chunks(order, self.batch_size), disable=disable_tqdm, desc="attnsteer loglikelihood"):
            for group in _by_steering(chunk, spans):
                scored = self._score([rows[i][0] for i in group], [rows[i][1] for i in group])
                for index, value in zip(group, scored, strict=True):
                    results[index] = value
        self._log_counts()
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of whole texts (perplexity tasks), unsteered: there is no prompt to emphasise."""
        results = []
        for request in tqdm(requests, disable=disable_tqdm, desc="attnsteer loglikelihood_rolling"):
            ids = self.tokenizer(request.args[0], return_tensors="pt")["input_ids"].to(self.model.device)
            if ids.shape[1] < 2:
                raise EmphasisRuleError("loglikelihood_rolling needs a tokenizer that adds a BOS token")
            with torch.inference_mode():
                logits = self.model(input_ids=ids).logits[0, :-1].float()
            results.append(float(torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).sum()))
        return results

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy generation per request until a stop string or `max_gen_toks`, steered rows batched together."""
        prepared = [(self.prepare(r.args[0], r.doc), dict(r.args[1])) for r in requests]
        results: list[str | None] = [None] * len(prepared)
        groups: dict[str, list[int]] = {}
        for index, (_, kwargs) in enumerate(prepared):
            groups.setdefault(repr(sorted(kwargs.items())), []).append(index)
        batches = [chunk for members in groups.values()
                   for chunk in _chunks(sorted(members, key=lambda i: -len(prepared[i][0].text)), self.batch_size)]
        for chunk in tqdm(batches, disable=disable_tqdm, desc="attnsteer generate_until"):
            for group in _by_steering(chunk, [p.spans for p, _ in prepared]):
                texts = self._generate([prepared[i][0] for i in group], prepared[group[0]][1])
                for index, text in zip(group, texts, strict=True):
                    results[index] = text
        self._log_counts()
        return results  # type: ignore[return-value]

    # ----- batched model calls -------------------------------------------------------------------
    def _score(self, pairs: Sequence[tuple[str, str]], spans: Sequence[list[CharSpan]]) -> list[tuple[float, bool]]:
        """Teacher-forced scores of a batch; context tokens may be down-weighted, continuation tokens never.

        Tokenised as lm-eval's HF model does: the whole text, the continuation being the tokens past the
        context's own tokenisation.
        """
        wholes = [context + continuation for context, continuation in pairs]
        context_lengths = [len(self.tokenizer(context)["input_ids"]) for context, _ in pairs]
        encoded = self.steerer.encode(wholes, emphasize=[[(s.start, s.end) for s in row] for row in spans])
        encodings, emphasis = encoded.encodings.to(self.model.device), encoded.emphasis_mask.to(self.model.device)
        attention = encodings["attention_mask"].bool()
        lengths = attention.sum(1).tolist()
        cont_lengths = [total - ctx for total, ctx in zip(lengths, context_lengths, strict=True)]
        if min(context_lengths) < 1 or min(cont_lengths) < 1:
            raise EmphasisRuleError("a log-likelihood request has an empty context or continuation after tokenising")
        width = attention.shape[1]
        limits = width - torch.tensor(cont_lengths, device=attention.device)
        prompt_mask = attention & (torch.arange(width, device=attention.device)[None, :] < limits[:, None])
        keep = max(cont_lengths) + 1
        steering = self.steerer.steered(encodings, emphasis, prompt_mask) if any(spans) else nullcontext()
        with torch.inference_mode(), steering:
            logits = self.model(**encodings, logits_to_keep=keep).logits[:, :-1].float()
        log_probs = torch.log_softmax(logits, -1)
        ids = encodings["input_ids"]
        results = []
        for row, count in enumerate(cont_lengths):
            targets = ids[row, width - count :]
            row_log_probs = log_probs[row, keep - 1 - count :]
            total = float(row_log_probs.gather(-1, targets[:, None]).sum())
            results.append((total, bool((row_log_probs.argmax(-1) == targets).all())))
        return results

    def _generate(self, contexts: Sequence[PreparedContext], gen_kwargs: dict[str, Any]) -> list[str]:
        until = _as_list(gen_kwargs.get("until"))
        max_new_tokens = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
        settings: dict[str, Any] = {}
        if until:
            settings.update(stop_strings=until, tokenizer=self.tokenizer)
        if gen_kwargs.get("do_sample"):
            settings.update(do_sample=True, temperature=float(gen_kwargs.get("temperature", 1.0)))
        steered = bool(contexts[0].spans)
        texts = self.steerer.generate(
            [c.text for c in contexts], emphasize=[[(s.start, s.end) for s in c.spans] for c in contexts],
            max_new_tokens=max_new_tokens, steer=steered, **settings,
        )
        return [_cut_at_stop(text, until) for text in texts]

    def _log_counts(self) -> None:
        counts = self.emphasis_counts
        log.info("attnsteer: emphasis rule %s: %d requests steered, %d unsteered (%d with no span found)",
                 self.rule, counts["steered"], counts["unsteered"], counts["no_span"])


def mark_spans(text: str, spans: Sequence[CharSpan], mark: str) -> tuple[str, list[CharSpan]]:
    """Wrap each span in `mark` (the marked-prompt baseline); returns the new text and the spans inside it."""
    shifted = [CharSpan(span.start + len(mark) * (2 * i + 1), span.end + len(mark) * (2 * i + 1))
               for i, span in enumerate(sorted(spans))]
    return wrap_spans(text, spans, mark), shifted


def _by_steering(chunk: Sequence[int], spans: Sequence[list[CharSpan]]) -> list[list[int]]:
    """Split a batch into its steered rows and its plain rows (a row with no span is never steered)."""
    steered = [i for i in chunk if spans[i]]
    plain = [i for i in chunk if not spans[i]]
    return [group for group in (steered, plain) if group]


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def _move_trailing_space(context: PreparedContext, continuation: str) -> tuple[tuple[str, str], list[CharSpan]]:
    """As lm-eval's HF model: trailing white space of the context belongs to the continuation (spans clipped)."""
    stripped = context.text.rstrip()
    spans = [CharSpan(s.start, min(s.end, len(stripped))) for s in context.spans if s.start < len(stripped)]
    return (stripped, context.text[len(stripped) :] + continuation), spans


def _cut_at_stop(text: str, until: Sequence[str]) -> str:
    cut = min((text.find(stop) for stop in until if stop and stop in text), default=len(text))
    return text[:cut]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _parse_mark(mark: str | None) -> str | None:
    key = "none" if mark is None else str(mark)
    if key not in MARKS:
        raise EmphasisRuleError(f"unknown mark {mark!r}; allowed: {', '.join(MARKS)}")
    return MARKS[key]


def _parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise LMEvalArgumentError(f"{name} must be true or false, got {value!r}")


def _resolve_device(device: Any) -> str:
    """`device` when torch can use it on this machine, else "cpu" (unset: "cpu")."""
    if device in (None, ""):
        return "cpu"
    try:
        torch.device(str(device))
    except RuntimeError:
        raise LMEvalArgumentError(f"device must be a torch device such as cpu or cuda:0, got {device!r}") from None
    try:
        torch.empty(0, device=str(device))
    except (RuntimeError, AssertionError):
        log.warning("attnsteer: device %s is not available here; the model runs on cpu", device)
        return "cpu"
    return str(device)


def _parse_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LMEvalArgumentError(f"{name} must be a number, got {value!r}") from None


def _parse_batch_size(value: Any, max_batch_size: Any = None) -> int:
    """lm-eval's batch_size: a positive integer, or `auto` / `auto:N` (max_batch_size, else 8)."""
    text = str(value).split(":")[0]
    if text == "auto":
        return AUTO_BATCH_SIZE if max_batch_size is None else _positive(max_batch_size, "max_batch_size")
    return _positive(value, "batch_size", "or 'auto'")


def _positive(value: Any, name: str, alternative: str = "") -> int:
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        also = f" {alternative}" if alternative else ""
        raise LMEvalArgumentError(f"{name} must be a positive integer{also}, got {value!r}")
    return int(text)
