"""`Steerer`: the high-level API. Prompts with emphasis in, steered text or scores out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.chat import ChatPrompt, chat_prompt, encode_prompt, marked_of
from attnsteer.errors import AttnsteerError, NoEmphasisError, SpanError, SteeringConfigError, UnsupportedModelError
from attnsteer.heads import HeadSpec
from attnsteer.model_info import model_shape
from attnsteer.spans import (
    DEFAULT_MARKUP,
    MarkedText,
    MarkupStyle,
    Occurrence,
    encode_marked,
    resolve_batch,
    resolve_emphasis,
)
from attnsteer.spans.substrings import check_occurrence
from attnsteer.steering.activation import prepare_state, steered
from attnsteer.steering.config import RowSteering, SteeringConfig, SteeringMode
from attnsteer.steering.installation import check_supported
from attnsteer.steering.methods import SteeringMethod, default_method, make_method, method_for_parameters
from attnsteer.steering.padding import left_pad, left_pad_prompts
from attnsteer.steering.state import SteeringState

if TYPE_CHECKING:
    from attnsteer.context import SteeredContext

Prompt = str | MarkedText | ChatPrompt  # what `encode`, `generate` and `score_candidates` take


@dataclass
class EncodedPrompts:
    """Tokenised prompts with their emphasis.

    encodings: input_ids / attention_mask, [batch, tokens], left-padded.
    emphasis_mask: [batch, tokens] bool, True on tokens inside an emphasised span.
    marked: the clean prompt texts (markup removed) with their character spans.
    prompt_mask: [batch, tokens] bool, the tokens steering may down-weight (None: the attention
        mask; a scored continuation is left out).
    """

    encodings: BatchEncoding
    emphasis_mask: torch.Tensor
    marked: list[MarkedText]
    prompt_mask: torch.Tensor | None = None


class Steerer:
    """Steer a model's attention towards emphasised parts of prompts.

    method: a steering method by name (`steering.methods`: "pasta", "instaboost", "spotlight") or a
        `SteeringMethod`; None: PASTA when heads / alpha / mode are given or the model ships a profiled
        head set, else the profiling-free default (`steering.methods.default_method`, logged).
    heads, alpha, mode: PASTA's parameters (heads: any `HeadConfig.parse` form, None: the model's
        shipped set; alpha 0.01, exclude); `config=SteeringConfig(...)` gives alpha and mode at once.
    boost: InstABoost's factor on attention to the emphasised tokens (>= 1).
    target, granularity: Spotlight's target share of attention on the span and "layer" | "head".
    markup: the inline emphasis delimiters (None disables markup).
    occurrence: which occurrences of a substring to emphasise, "first" or "all".
    A tokenizer without a pad token gets its EOS token as pad token (set on the tokenizer).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        heads: HeadSpec | None = None,
        alpha: float | None = None,
        mode: SteeringMode | None = None,
        markup: MarkupStyle | None = DEFAULT_MARKUP,
        occurrence: Occurrence = "first",
        config: SteeringConfig | None = None,
        method: str | SteeringMethod | None = None,
        boost: float | None = None,
        target: float | None = None,
        granularity: str | None = None,
    ) -> None:
        check_supported(model)
        check_occurrence(occurrence)
        if not getattr(tokenizer, "is_fast", False):
            raise UnsupportedModelError("attnsteer needs a fast tokenizer (with offset mapping) to locate spans")
        self.model, self.tokenizer, self.markup, self.occurrence = model, tokenizer, markup, occurrence
        parameters = _given(heads=heads, **_config_parameters(config, alpha, mode), boost=boost, target=target,
                            granularity=granularity)
        self._set_method(_choose_method(model, method, parameters))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def with_options(
        self, heads: HeadSpec | None = None, alpha: float | None = None, mode: SteeringMode | None = None,
        method: str | SteeringMethod | None = None, boost: float | None = None, target: float | None = None,
        granularity: str | None = None,
    ) -> Steerer:
        """A copy sharing the model, with another method or other parameters (the rest of the current
        method's parameters are kept when the method stays the same)."""
        other = object.__new__(Steerer)
        other.__dict__.update(self.__dict__)
        changes = _given(heads=heads, alpha=alpha, mode=mode, boost=boost, target=target, granularity=granularity)
        if isinstance(method, SteeringMethod):
            if changes:
                raise SteeringConfigError("give a SteeringMethod or parameters, not both")
            other._set_method(method)
            return other
        name = method or self.method.name
        kept = self.method.parameters() if name == self.method.name else {}
        other._set_method(make_method(name, self.model, **{**kept, **changes}))
        return other

    def _set_method(self, method: SteeringMethod) -> None:
        """Adopt `method`: `heads` / `config` are the static part of what it applies (PASTA's heads and
        alpha; InstABoost's every head; none for Spotlight)."""
        row = method.row()
        row.heads.validate(*model_shape(self.model))
        self.method, self.heads, self.config, self._row = method, row.heads, row.config, row

    @property
    def row_steering(self) -> RowSteering:
        """What this steerer applies to every row it steers (`method.row()`)."""
        return self._row

    # ----- encoding ------------------------------------------------------------------------------
    def encode(self, prompts: Prompt | Sequence[Prompt], emphasize: Any = None) -> EncodedPrompts:
        """Resolve markup/substrings/char spans and tokenise (left padding).

        prompts: strings (their emphasis from `emphasize` or markup), or prompts that carry their own
        emphasis: `MarkedText` (clean text + char spans) and `ChatPrompt` (a chat through its template,
        markers tokenised as control tokens); `emphasize` is then not given.
        """
        if isinstance(prompts, (str, MarkedText, ChatPrompt)):
            prompts, emphasize = [prompts], _single_prompt_emphasis(emphasize)
        prompts = list(prompts)
        if all(isinstance(prompt, str) for prompt in prompts):
            marked = resolve_batch(prompts, emphasize, markup=self.markup, occurrence=self.occurrence)
            return self._batch([encode_marked(self.tokenizer, item) for item in marked], marked)
        if emphasize is not None or any(isinstance(prompt, str) for prompt in prompts):
            raise SpanError("give prompts as strings (with emphasize= or markup), or all as MarkedText / ChatPrompt, "
                            "which carry their own emphasis; not mixed, and no emphasize= with them")
        rows = [encode_prompt(self.tokenizer, prompt) for prompt in prompts]
        return self._batch(rows, [marked_of(prompt) for prompt in prompts])

    def resolve(self, prompt: str, emphasize: Any = None) -> MarkedText:
        """One prompt's clean text and emphasised char spans (markup, substrings, offsets), untokenised."""
        return resolve_batch([prompt], _single_prompt_emphasis(emphasize), markup=self.markup,
                             occurrence=self.occurrence)[0]

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], emphasize: Sequence[Any] | None = None,
                    substrings: Sequence[str] = ()) -> ChatPrompt:
        """Messages (OpenAI form) with their emphasis, through the tokenizer's chat template (see `chat`)."""
        per_message = [None] * len(messages) if emphasize is None else list(emphasize)
        if len(per_message) != len(messages):
            raise SpanError(f"emphasize has {len(per_message)} entries for {len(messages)} messages; give one per "
                            "message (None for a message with nothing emphasised)")
        roles, contents = [], []
        for index, (message, items) in enumerate(zip(messages, per_message, strict=True)):
            role, content = _message(message, index)
            roles.append(role)
            contents.append(self._resolve_message(content, items, index))
        return chat_prompt(self.tokenizer, roles, contents, substrings)

    def _resolve_message(self, content: str, items: Any, index: int) -> MarkedText:
        if not content.strip() and items is None:
            return MarkedText(content)
        try:
            return resolve_emphasis(content, items, markup=self.markup, occurrence=self.occurrence)
        except AttnsteerError as error:
            raise type(error)(f"messages[{index}]: {error}") from None

    def _batch(self, rows: Sequence[tuple[list[int], list[bool]]], marked: list[MarkedText]) -> EncodedPrompts:
        """Token rows with their emphasis flags as one left-padded batch on the model's device."""
        ids, attention, emphasis = left_pad_prompts([r[0] for r in rows], [r[1] for r in rows],
                                                    self.tokenizer.pad_token_id)
        device = self.model.device
        encodings = BatchEncoding({"input_ids": ids.to(device), "attention_mask": attention.to(device)})
        return EncodedPrompts(encodings, emphasis.to(device), marked)

    @contextmanager
    def steered(
        self, encodings: BatchEncoding | dict[str, torch.Tensor], emphasis_mask: torch.Tensor,
        prompt_mask: torch.Tensor | None = None,
    ) -> Iterator[SteeringState]:
        """Low level: any call of `self.model` inside the block is steered (see `steering.steered`).

        emphasis_mask: [batch, tokens] bool over `encodings["input_ids"]`. prompt_mask defaults to
        the attention mask (every real input token may be down-weighted).
        """
        if prompt_mask is None:
            prompt_mask = encodings.get("attention_mask")
            if prompt_mask is None:
                prompt_mask = torch.ones_like(encodings["input_ids"])
        state = prepare_state(self.model, self.row_steering, emphasis_mask, prompt_mask.bool())
        with steered(self.model, state):
            yield state

    # ----- generation ----------------------------------------------------------------------------
    def generate(
        self, prompts: Prompt | Sequence[Prompt], emphasize: Any = None, max_new_tokens: int = 32,
        steer: bool = True, **generate_kwargs: Any,
    ) -> str | list[str]:
        """Greedy generation (unless overridden); returns the new text only, one string per prompt.

        emphasize: None (read `**markup**`), one substring, or one list per prompt of substrings /
        (start, end) character offsets. steer=False runs the plain model on the same clean text.
        Prompts may also be `MarkedText` / `ChatPrompt` (see `encode`); a ChatPrompt's reply ends
        where its template says (`RenderedChat.stop`).
        """
        single = isinstance(prompts, (str, MarkedText, ChatPrompt))
        rows = [prompts] if single else list(prompts)
        stop = tuple(dict.fromkeys(s for p in rows if isinstance(p, ChatPrompt) for s in p.rendered.stop))
        texts = self._generate(self.encode(prompts, emphasize), max_new_tokens, steer, stop, generate_kwargs)
        return texts[0] if single else texts

    def chat(
        self, messages: Sequence[Mapping[str, Any]], emphasize: Sequence[Any] | None = None,
        max_new_tokens: int = 64, steer: bool = True, substrings: Sequence[str] = (), **generate_kwargs: Any,
    ) -> str:
        """The assistant's reply to `messages` (the OpenAI list: `[{"role": "system", "content": ...}, ...]`).

        emphasize: None (read `**markup**` in the contents), or one entry per message: None, a substring,
        or a list of substrings / (start, end) offsets in that message's content. substrings: more
        emphasis, each the first occurrence in the first message containing it. The tokenizer's chat
        template is applied (a plain `User: ... Assistant:` one for base models) and the emphasis lands on
        the same text inside it; a message is tokenised as text, so it cannot close its own turn.
        """
        prompt = self.chat_prompt(messages, emphasize, substrings)
        encoded = self._batch([prompt.encode(self.tokenizer)], [prompt.marked])
        return self._generate(encoded, max_new_tokens, steer, prompt.rendered.stop, generate_kwargs)[0]

    def _generate(self, encoded: EncodedPrompts, max_new_tokens: int, steer: bool, stop: Sequence[str],
                  generate_kwargs: dict[str, Any]) -> list[str]:
        """The new text of each row (cut before the first `stop` string)."""
        if generate_kwargs.get("cache_implementation") not in (None, "dynamic"):
            raise SteeringConfigError(
                f"cache_implementation={generate_kwargs['cache_implementation']!r} is not supported while "
                "steering; use the default dynamic cache"
            )
        settings = {"max_new_tokens": max_new_tokens, "do_sample": False, "top_p": None, "top_k": None,
                    "pad_token_id": self.tokenizer.pad_token_id, **generate_kwargs}
        if stop:
            settings.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        with torch.inference_mode(), self._maybe_steered(encoded, steer):
            output = self.model.generate(**encoded.encodings, **settings)
        new_tokens = output[:, encoded.encodings["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [_cut_at(text, stop) for text in texts]

    def score(
        self, prompt: str | Sequence[str], continuation: str | Sequence[str], emphasize: Any = None,
        steer: bool = True,
    ) -> float | list[float]:
        """Sum of log-probabilities (nats) of `continuation` after `prompt`, teacher-forced.

        The continuation is never emphasised nor down-weighted, as generated tokens in `generate`.
        """
        single = isinstance(prompt, str)
        continuations = [continuation] if isinstance(continuation, str) else list(continuation)
        encoded = self.encode(prompt, emphasize)
        if len(encoded.marked) != len(continuations):
            raise ValueError(f"got {len(encoded.marked)} prompts but {len(continuations)} continuations")
        scores = self._score_encoded(encoded, continuations, steer)
        return scores[0] if single else scores

    def _score_encoded(self, encoded: EncodedPrompts, continuations: list[str], steer: bool) -> list[float]:
        cont_ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in continuations]
        if any(not ids for ids in cont_ids):
            raise ValueError("a continuation to score is empty")
        batch = _append_continuations(encoded, cont_ids, self.tokenizer.pad_token_id)
        longest = max(len(ids) for ids in cont_ids)
        with torch.inference_mode(), self._maybe_steered(batch, steer):
            logits = self.model(**batch.encodings, logits_to_keep=longest + 1).logits[:, :-1].float()
        log_probs = torch.log_softmax(logits, dim=-1).cpu()
        scores = []
        for row, ids in enumerate(cont_ids):
            picked = log_probs[row, longest - len(ids) :].gather(-1, torch.tensor(ids)[:, None])
            scores.append(float(picked.sum()))
        return scores

    def score_candidates(
        self, prompt: Prompt, candidates: Sequence[str], emphasize: Any = None, steer: bool = True,
    ) -> list[tuple[float, int]]:
        """(sum log-prob in nats, number of tokens) of each candidate continuation of one prompt.

        The prompt is encoded once (steered) and its KV cache shared by all candidates, which run as
        one right-padded batch; equal to `score(prompt, candidate)` for each candidate.
        """
        encoded = self.encode(prompt, emphasize)
        cont_ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in candidates]
        if not cont_ids or any(not ids for ids in cont_ids):
            raise ValueError("give at least one candidate, none empty")
        width = max(len(ids) for ids in cont_ids)
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        batch_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in cont_ids], device=device)
        prompt_attention = encoded.encodings["attention_mask"].expand(len(cont_ids), -1)
        attention = torch.cat([prompt_attention, _first_n(cont_ids, width).to(device)], dim=1)
        with torch.inference_mode(), self._maybe_steered(encoded, steer):
            prefill = self.model(**encoded.encodings, use_cache=True, logits_to_keep=1)
            cache = prefill.cache
            cache.batch_repeat_interleave(len(cont_ids))
            logits = self.model(input_ids=batch_ids, attention_mask=attention.long(), cache=cache).logits
        first = torch.log_softmax(prefill.logits[0, -1].float(), -1).cpu()
        rest = torch.log_softmax(logits.float(), -1).cpu()
        scores = []
        for row, ids in enumerate(cont_ids):
            total = float(first[ids[0]]) + sum(float(rest[row, i - 1, ids[i]]) for i in range(1, len(ids)))
            scores.append((total, len(ids)))
        return scores

    # ----- reused contexts -----------------------------------------------------------------------
    def prepare_context(self, text: str, method: str = "llmsteer", **options: Any) -> SteeredContext:
        """A `attnsteer.context.SteeredContext`: `text` prefilled once (LLMSteer, given spans or plain)
        whose KV cache answers many queries; see `attnsteer.context.prepare_context` for `options`."""
        from attnsteer.context import prepare_context

        return prepare_context(self, text, method, **options)

    # ----- helpers -------------------------------------------------------------------------------
    @contextmanager
    def _maybe_steered(self, encoded: EncodedPrompts, steer: bool) -> Iterator[SteeringState | None]:
        if not steer:
            yield None
            return
        if not bool(encoded.emphasis_mask.any()):
            raise NoEmphasisError(
                "nothing is emphasised: mark text with **...** or pass emphasize=[...] "
                "(or steer=False for the plain model)"
            )
        with self.steered(encoded.encodings, encoded.emphasis_mask, encoded.prompt_mask) as state:
            yield state


def _config_parameters(config: SteeringConfig | None, alpha: float | None, mode: SteeringMode | None,
                       ) -> dict[str, Any]:
    """alpha / mode from `config` or from the shorthand (not both)."""
    if config is None:
        return {"alpha": alpha, "mode": mode}
    if alpha is not None or mode is not None:
        raise SteeringConfigError("give config=SteeringConfig(...) or alpha=/mode=, not both")
    if not isinstance(config, SteeringConfig):
        raise SteeringConfigError(f"config must be a SteeringConfig, got {config!r}")
    return {"alpha": config.alpha, "mode": config.mode}


def _given(**parameters: Any) -> dict[str, Any]:
    """The parameters that are not None."""
    return {key: value for key, value in parameters.items() if value is not None}


def _choose_method(model: PreTrainedModel, method: str | SteeringMethod | None,
                   parameters: dict[str, Any]) -> SteeringMethod:
    """`method` (a name, built with `parameters`, or a SteeringMethod); None: see `Steerer`."""
    if isinstance(method, SteeringMethod):
        if parameters:
            raise SteeringConfigError(f"give method= a SteeringMethod or a name with parameters, not both "
                                      f"(got {', '.join(parameters)})")
        return method
    if method is None and not parameters:
        return default_method(model)
    return make_method(method or method_for_parameters(parameters), model, **parameters)


def _message(message: Mapping[str, Any], index: int) -> tuple[str, str]:
    """(role, content) of one OpenAI-style message; anything else is a clear error."""
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
        raise SpanError(f"messages[{index}] must be a dict with a 'role' and a str 'content', got {message!r}")
    return str(message.get("role")), message["content"]


def _cut_at(text: str, stops: Sequence[str]) -> str:
    """`text` up to the first of `stops` (the stop string itself is not part of the reply)."""
    cuts = [text.index(stop) for stop in stops if stop in text]
    return text[: min(cuts)] if cuts else text


def _first_n(rows: list[list[int]], width: int) -> torch.Tensor:
    """[len(rows), width] bool, True on each row's real tokens (a pad id may also be a real token)."""
    return torch.tensor([[i < len(row) for i in range(width)] for row in rows])


def _single_prompt_emphasis(emphasize: Any) -> list[Any] | None:
    """For one prompt, accept its emphasis as is ("Rome", ["Rome", (3, 9)]) or in batch form ([["Rome"]])."""
    if emphasize is None:
        return None
    is_batch_form = isinstance(emphasize, list) and len(emphasize) == 1 and isinstance(emphasize[0], list)
    return emphasize if is_batch_form else [emphasize]


def _append_continuations(encoded: EncodedPrompts, cont_ids: list[list[int]], pad_id: int) -> EncodedPrompts:
    """Append each row's continuation and re-left-pad; the continuation is outside the prompt mask."""
    ids, prompt, emphasis = [], [], []
    for row, cont in enumerate(cont_ids):
        keep = encoded.encodings["attention_mask"][row].bool()
        ids.append(encoded.encodings["input_ids"][row][keep].tolist() + cont)
        prompt.append([True] * int(keep.sum()) + [False] * len(cont))
        emphasis.append(encoded.emphasis_mask[row][keep].tolist() + [False] * len(cont))
    device = encoded.emphasis_mask.device
    input_ids, attention, emphasis_mask = (t.to(device) for t in left_pad_prompts(ids, emphasis, pad_id))
    encodings = BatchEncoding({"input_ids": input_ids, "attention_mask": attention})
    return EncodedPrompts(encodings, emphasis_mask, encoded.marked, left_pad(prompt, False).to(device))
