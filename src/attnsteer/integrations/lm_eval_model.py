"""The lm-evaluation-harness model `attnsteer`: any lm-eval task, steered on emphasised prompt text.

Importing this module registers the model in lm-eval's registry (`@register_model("attnsteer")`).
Model arguments (`--model_args key=value,...` or a JSON object):
  pretrained  a model directory or hub id, or an embedded model (`smollm2-135m-instruct`);
              `embedded`/`default`/unset: the embedded Gemma 3 270M
  method      pasta | instaboost | spotlight (`attnsteer.steering.methods`); unset: chosen as `Steerer` does
  heads       pasta: a PASTA JSON file, `all`, layers `12+13` or pairs `11.2+12.1` (`+` for `,`, which lm-eval
              splits on; or give a JSON object); unset/`default`: the model's shipped set
  alpha, mode pasta: as `attnsteer.SteeringConfig` (default 0.01, exclude)
  boost       instaboost: the factor on attention to the emphasised tokens, >= 1 (default 3)
  target, granularity  spotlight: the span's target share of attention in (0, 1) (default 0.3), head | layer
              (default head)
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
  parallelize true: spread the model over the GPUs (and CPU / disk) with accelerate, device_map `auto`, as
              lm-eval's hf model does; `device` is then unused
  device_map  a placement (auto, balanced, balanced_low_0, sequential), a device, or (JSON model_args) a
              {module: device} map with `cpu` / `disk` offload (`attnsteer.models.placement`); implies parallelize
  max_memory_per_gpu, max_cpu_memory  caps for accelerate's placement ("20GiB"); offload_folder: where weights
              offloaded to disk are written when the checkpoint cannot be read in place
Under `accelerate launch` / `torchrun` with several processes lm-eval splits the documents by the model's rank
and gathers the metrics on rank 0 (`lm_eval_parallel.DataParallel`); each process runs its own copy of the model
on its device (with parallelize: on its share of the GPUs, as lm-eval's hf model).
Requests whose context has no emphasised text under the rule run unsteered; `emphasis_counts` counts them.
lm-eval's --apply_chat_template (with --system_instruction, --fewshot_as_multiturn) renders each request's
messages through `apply_chat_template` (the tokenizer's template, else attnsteer's plain one); the rule then
reads the request's own user turn only, and the template's markers stay control tokens (see `lm_eval_chat`).
Bad model arguments raise `LMEvalArgumentError` (or the steering method's own error) before the model loads.
The steering method in effect is logged and recorded in lm-eval's results (`config.steering`, `get_model_info`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from attnsteer.evaluation.methods import wrap_spans
from attnsteer.integrations.emphasis_rules import EmphasisRuleError, parse_emphasis_rule
from attnsteer.integrations.lm_eval_arguments import (
    LMEvalArgumentError,
    parse_batch_size,
    parse_bool,
    parse_mark,
    placement_arguments,
    resolve_device,
    steering_arguments,
)
from attnsteer.integrations.lm_eval_chat import ChatContexts
from attnsteer.integrations.lm_eval_parallel import DataParallel, join_processes, launched_processes, process_gpu_memory
from attnsteer.spans import CharSpan, MarkedText, encode_marked

if TYPE_CHECKING:
    from attnsteer.steerer import EncodedPrompts

__all__ = ["AttnsteerLM", "LMEvalArgumentError", "PreparedContext", "mark_spans"]
log = logging.getLogger("lm_eval.attnsteer")  # follows lm-eval's log level and format


@dataclass
class PreparedContext:
    """A request's context as the model reads it: text (marked if asked) and the spans to steer.

    control: a chat template's own text (`RenderedChat.control_spans`), tokenised with its control tokens;
    empty for a plain context. stop: strings ending the reply under the template (the plain one's).
    """

    text: str
    spans: list[CharSpan]
    control: tuple[CharSpan, ...] = ()
    stop: tuple[str, ...] = ()

    def tokens(self, tokenizer: Any) -> tuple[list[int], list[bool]]:
        """Token ids and emphasis flags: the text as text, the control spans with their control tokens."""
        marked = MarkedText(self.text, tuple(self.spans))
        return encode_marked(tokenizer, marked, add_special_tokens=not self.control, control_spans=self.control)


@register_model("attnsteer")
class AttnsteerLM(DataParallel, LM):
    """lm-eval `LM` running a `Steerer`: log-likelihood and generation requests, batched and steered; data
    parallel under `accelerate launch` / `torchrun` (`DataParallel`), model parallel with `parallelize`."""

    def __init__(self, pretrained: str | None = None, heads: Any = None, alpha: Any = None, mode: str | None = None,
                 emphasis: str | None = None, steer: bool = True, mark: str | None = None, batch_size: Any = 8,
                 max_gen_toks: int = 256, device: str | None = None, max_batch_size: Any = None,
                 method: str | None = None, boost: Any = None, target: Any = None, granularity: str | None = None,
                 parallelize: Any = False, device_map: Any = None, max_memory_per_gpu: Any = None,
                 max_cpu_memory: Any = None, offload_folder: Any = None, **unused: Any) -> None:
        super().__init__()
        from attnsteer.steerer import Steerer

        self.rule = parse_emphasis_rule(emphasis)
        self.mark = parse_mark(mark)
        self.steer = parse_bool(steer, "steer") and self.rule.steers
        self.batch_size = parse_batch_size(batch_size, max_batch_size)
        self.max_gen_toks = int(max_gen_toks)
        steering = steering_arguments(method, heads=heads, alpha=alpha, mode=mode, boost=boost, target=target,
                                      granularity=granularity)
        several = launched_processes() > 1 and (parse_bool(parallelize, "parallelize") or device_map is not None)
        placement = placement_arguments(parallelize, device_map, max_memory_per_gpu, max_cpu_memory, offload_folder,
                                        gpus=process_gpu_memory() if several else None)
        if unused:
            log.warning("attnsteer: ignoring model arguments %s", sorted(unused))
        self._join(join_processes())
        model, tokenizer = self._load(None if pretrained in (None, "default") else str(pretrained), device, placement)
        self.steerer = Steerer(model, tokenizer, markup=None, **steering)
        log.info("attnsteer: steering method %s%s", self.steerer.method.describe(),
                 "" if self.steer else " (not applied: steer=false or emphasis rule none)")
        self.model, self.tokenizer = model, tokenizer
        self.chats = ChatContexts(tokenizer)
        self.emphasis_counts = {"steered": 0, "unsteered": 0, "no_span": 0}

    def _load(self, name: str | None, device: str | None, placement: dict[str, Any]) -> tuple[Any, Any]:
        """`load_model` on this process's device: `device` (lm-eval's --device; one process), accelerate's device
        for the process (several), or spread by `placement`. With several processes the main one loads first and
        the others then together, so only the main one converts an embedded model on first use."""
        from attnsteer.models import load_model

        if placement:
            where: dict[str, Any] = placement
        elif self.accelerator is not None:
            where = {"device": str(self.accelerator.device)}  # lm-eval's --device is overridden, as in its hf model
        else:
            where = {"device": resolve_device(device)}
        with self._main_process_first():
            return load_model(name, **where)

    @property
    def device(self) -> torch.device:
        """Where lm-eval puts the tensors it gathers: this process's device, else the model's input device."""
        return self.accelerator.device if self.accelerator is not None else self.model.device

    # ----- emphasis ------------------------------------------------------------------------------
    def prepare(self, context: str, doc: dict[str, Any] | None) -> PreparedContext:
        """Apply the emphasis rule (and the mark) to one request's context (a templated one: to its user turn)."""
        messages = self.chats.messages(context)
        text = context if messages is None else messages.turn_text
        spans = self.rule.spans(text, doc) if (self.steer or self.mark) else []
        if (self.steer or self.mark) and self.rule.steers and not spans:
            self.emphasis_counts["no_span"] += 1
        if self.mark and spans:
            text, spans = mark_spans(text, spans, self.mark)
        steered = self.steer and bool(spans)
        self.emphasis_counts["steered" if steered else "unsteered"] += 1
        if messages is None:
            return PreparedContext(text, spans if steered else [])
        prompt = messages.prompt(self.tokenizer, text, spans if steered else [])
        return PreparedContext(prompt.marked.text, list(prompt.marked.spans), prompt.rendered.control_spans(),
                               prompt.rendered.stop)

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval records in its results' `config`: the steering method in effect (its `to_dict()`; None
        when nothing is steered) and the emphasis rule."""
        return {"steering": self.steerer.method.to_dict() if self.steer else None, "emphasis_rule": str(self.rule)}

    # ----- chat templates (lm-eval's --apply_chat_template) ---------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The request's messages as one prompt, through the tokenizer's chat template (`attnsteer.chat`)."""
        return self.chats.render(chat_history, add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer's name or path (lm-eval keys its request cache with it), as lm-eval's hf model."""
        return str(self.tokenizer.name_or_path).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The template `apply_chat_template` renders with (None when lm-eval applies none)."""
        return None if chat_template in (False, None) else self.chats.template

    # ----- lm-eval API ---------------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(sum log-prob of the continuation in nats, whether it is the greedy continuation) per request."""
        rows = [_move_trailing_space(self.prepare(r.args[0], r.doc), r.args[1]) for r in requests]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0].text + rows[i][1]))
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        spans = [context.spans for context, _ in rows]
        for chunk in tqdm(_chunks(order, self.batch_size), disable=disable_tqdm, desc="attnsteer loglikelihood"):
            for group in _by_steering(chunk, spans):
                scored = self._score([rows[i] for i in group])
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
        prepared = [_with_stops(self.prepare(r.args[0], r.doc), dict(r.args[1])) for r in requests]
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
    def _score(self, rows: Sequence[tuple[PreparedContext, str]]) -> list[tuple[float, bool]]:
        """Teacher-forced scores of a batch of (context, continuation); context tokens may be down-weighted,
        continuation tokens never.

        Tokenised as lm-eval's HF model does: the whole text, the continuation being the tokens past the
        context's own tokenisation.
        """
        wholes = [replace(context, text=context.text + continuation) for context, continuation in rows]
        context_lengths = [len(context.tokens(self.tokenizer)[0]) for context, _ in rows]
        encoded = self._encode(wholes)
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
        steering = self.steerer.steered(encodings, emphasis, prompt_mask) if rows[0][0].spans else nullcontext()
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
        texts = self.steerer._generate(self._encode(contexts), max_new_tokens, bool(contexts[0].spans), (), settings)
        return [_cut_at_stop(text, until) for text in texts]

    def _encode(self, contexts: Sequence[PreparedContext]) -> EncodedPrompts:
        """The contexts' token rows (`PreparedContext.tokens`) as one left-padded batch on the model's device."""
        marked = [MarkedText(context.text, tuple(context.spans)) for context in contexts]
        return self.steerer._batch([context.tokens(self.tokenizer) for context in contexts], marked)

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


def _move_trailing_space(context: PreparedContext, continuation: str) -> tuple[PreparedContext, str]:
    """As lm-eval's HF model: trailing white space of the context belongs to the continuation (spans and a
    template's control spans clipped; the moved white space is text)."""
    stripped = context.text.rstrip()

    def clip(spans: Sequence[CharSpan]) -> list[CharSpan]:
        return [CharSpan(s.start, min(s.end, len(stripped))) for s in spans if s.start < len(stripped)]

    moved = replace(context, text=stripped, spans=clip(context.spans), control=tuple(clip(context.control)))
    return moved, context.text[len(stripped) :] + continuation


def _with_stops(context: PreparedContext, gen_kwargs: dict[str, Any]) -> tuple[PreparedContext, dict[str, Any]]:
    """The request's generation settings, its `until` extended by the chat template's stop strings."""
    if context.stop:
        until = _as_list(gen_kwargs.get("until"))
        gen_kwargs["until"] = until + [stop for stop in context.stop if stop not in until]
    return context, gen_kwargs


def _cut_at_stop(text: str, until: Sequence[str]) -> str:
    cut = min((text.find(stop) for stop in until if stop and stop in text), default=len(text))
    return text[:cut]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
