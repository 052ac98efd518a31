"""Turn validated requests into model rows: clean text, token ids, per-token emphasis, steering
(`steering_request`).

Every bad input becomes a `RequestError` naming the request field (OpenAI's `param`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from attnsteer.chat import chat_prompt
from attnsteer.errors import EmptyPromptError, MarkupError, SpanError
from attnsteer.server.request_error import RequestError, blame
from attnsteer.server.schemas import (
    MAX_EMPHASIS_ENTRIES,
    AttentionRequest,
    CharSpanField,
    ChatCompletionRequest,
    CompletionRequest,
    EmphasisField,
)
from attnsteer.server.settings import ServerSettings
from attnsteer.server.steering_request import steering_for
from attnsteer.spans import (
    DEFAULT_MARKUP,
    CharSpan,
    MarkedText,
    encode_marked,
    resolve_emphasis,
)
from attnsteer.steerer import Steerer
from attnsteer.steering.config import RowSteering


@dataclass(frozen=True)
class PreparedPrompt:
    """One model row. input_ids and emphasis: one entry per prompt token (emphasis True on emphasised tokens)."""

    text: str
    input_ids: list[int]
    emphasis: list[bool]
    steering: RowSteering | None
    stop: tuple[str, ...] = ()


def _items(emphasis: Sequence[EmphasisField] | None) -> list[str | tuple[int, int]] | None:
    if emphasis is None:
        return None
    return [(item.start, item.end) if isinstance(item, CharSpanField) else item for item in emphasis]


def resolve_text(text: str, emphasis: Sequence[EmphasisField] | None, markup: bool, param: str) -> MarkedText:
    """Markup (if asked) and substrings/spans -> clean text with char spans; errors name `param` or emphasis."""
    try:
        return resolve_emphasis(text, _items(emphasis), markup=DEFAULT_MARKUP if markup else None)
    except (EmptyPromptError, MarkupError) as error:
        raise RequestError(param, f"{param}: {error}") from None
    except SpanError as error:
        raise RequestError("emphasis", f"emphasis: {error}") from None


def tokenize(tokenizer: PreTrainedTokenizerBase, marked: MarkedText, max_tokens: int, param: str,
             control_spans: Sequence[CharSpan] = ()) -> tuple[list[int], list[bool]]:
    """Token ids and per-token emphasis of the clean text, user text tokenised as text (see
    `spans.encode_marked`); too long a prompt -> RequestError."""
    with blame("emphasis"):
        ids, mask = encode_marked(tokenizer, marked, not control_spans, control_spans)
    if len(ids) > max_tokens:
        raise RequestError(param, f"{param} has {len(ids)} tokens; this server accepts at most {max_tokens}")
    return ids, mask


def check_sizes(texts: Sequence[str], param: str, settings: ServerSettings, rows: int = 1) -> None:
    """Cheap limits first, before any span search or tokenisation: rows per request and characters."""
    if rows > settings.max_waiting:
        raise RequestError(param, f"{param}: {rows} prompts in one request; this server takes at most "
                                  f"{settings.max_waiting} (its queue's size), so this request can never fit")
    length = sum(len(text) for text in texts) if rows == 1 else max((len(text) for text in texts), default=0)
    if length > settings.max_prompt_chars:
        raise RequestError(param, f"{param} has {length} characters; this server accepts prompts of at most "
                                  f"{settings.max_prompt_tokens} tokens ({settings.max_prompt_chars} characters)")


def prepare_completion(request: CompletionRequest, steerer: Steerer, settings: ServerSettings) -> list[PreparedPrompt]:
    """One row per prompt; with a list of prompts, `emphasis` is one list per prompt."""
    prompts = [request.prompt] if isinstance(request.prompt, str) else list(request.prompt)
    if not prompts:
        raise RequestError("prompt", "prompt: give a string or a non-empty list of strings")
    check_sizes(prompts, "prompt", settings, len(prompts))
    max_prompt_tokens = settings.max_prompt_tokens
    emphasis = _per_prompt_emphasis(request, len(prompts))
    marked = [resolve_text(text, items, request.emphasis_markup, "prompt")
              for text, items in zip(prompts, emphasis, strict=True)]
    steering = steering_for(request, steerer, any(item.spans for item in marked))
    rows = []
    for item in marked:
        ids, mask = tokenize(steerer.tokenizer, item, max_prompt_tokens, "prompt")
        rows.append(PreparedPrompt(item.text, ids, mask, steering if item.spans else None, stop_list(request.stop)))
    return rows


def _per_prompt_emphasis(request: CompletionRequest, count: int) -> list[list[EmphasisField] | None]:
    emphasis = request.emphasis
    if emphasis is None:
        return [None] * count
    nested = bool(emphasis) and all(isinstance(item, list) for item in emphasis)
    if isinstance(request.prompt, str):
        if any(isinstance(item, list) for item in emphasis):
            raise RequestError("emphasis", "emphasis: one prompt takes a flat list of substrings/spans")
        if len(emphasis) > MAX_EMPHASIS_ENTRIES:
            raise RequestError("emphasis", f"emphasis: {len(emphasis)} entries; give at most {MAX_EMPHASIS_ENTRIES} "
                                           "substrings/spans per prompt")
        return [emphasis]  # type: ignore[list-item]
    if not nested or len(emphasis) != count:
        raise RequestError("emphasis", f"emphasis: with {count} prompts give {count} lists, one per prompt")
    return list(emphasis)  # type: ignore[arg-type]


def prepare_chat(request: ChatCompletionRequest, steerer: Steerer, settings: ServerSettings) -> PreparedPrompt:
    """Resolve emphasis in each message, apply the chat template, shift the spans into the rendered prompt."""
    check_sizes([message.text() for message in request.messages], "messages", settings)
    contents = []
    for index, message in enumerate(request.messages):
        param = f"messages[{index}].content"
        text = message.text()
        if not text.strip() and not message.emphasis:
            contents.append(MarkedText(text))
            continue
        contents.append(resolve_text(text, message.emphasis, request.emphasis_markup, param))
    with blame("emphasis"):
        prompt = chat_prompt(steerer.tokenizer, [m.role for m in request.messages], contents, request.emphasis or [])
    steering = steering_for(request, steerer, bool(prompt.marked.spans))
    ids, mask = tokenize(steerer.tokenizer, prompt.marked, settings.max_prompt_tokens, "messages",
                         prompt.rendered.control_spans())
    return PreparedPrompt(prompt.marked.text, ids, mask, steering, stop_list(request.stop) + prompt.rendered.stop)


def prepare_attention(request: AttentionRequest, steerer: Steerer, settings: ServerSettings) -> PreparedPrompt:
    """The attention view's one row (it needs an emphasised span)."""
    check_sizes([request.prompt], "prompt", settings)
    max_prompt_tokens = settings.max_prompt_tokens
    marked = resolve_text(request.prompt, request.emphasis, request.emphasis_markup, "prompt")
    if not marked.spans:
        raise RequestError("emphasis", "emphasis: the attention view needs an emphasised span")
    ids, mask = tokenize(steerer.tokenizer, marked, max_prompt_tokens, "prompt")
    steering = steering_for(request, steerer, True)
    return PreparedPrompt(marked.text, ids, mask, steering)


def stop_list(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > 4 or any(not item for item in stops):
        raise RequestError("stop", "stop: give at most 4 non-empty strings")
    return tuple(stops)

