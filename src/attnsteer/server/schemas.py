"""Request and response bodies (pydantic), OpenAI-compatible plus the emphasis fields.

Unknown fields are refused (400 naming the field) rather than silently ignored; OpenAI fields this
server cannot honour accept only their neutral value (n=1, echo=false, logprobs=null).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_EMPHASIS_ENTRIES = 64  # substrings / spans per prompt or message: enough for any real emphasis, cheap to find
MAX_EMPHASIS_LISTS = 1024  # one emphasis list per prompt of a request (prompts are bounded by the queue's size)
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes as a non-negative seed


def _unicode_text(value: str) -> str:
    """Refuse text that is not valid Unicode (a lone surrogate from a JSON escape like "\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"is not valid Unicode text: a lone surrogate U+{ord(value[error.start]):04X} at character "
                         f"{error.start}; send UTF-8 text") from None
    return value


Text = Annotated[str, AfterValidator(_unicode_text)]
"""Every string a request carries: valid Unicode, or a 400 naming the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CharSpanField(Strict):
    """A character span [start, end) of the clean text (markup removed; for chat, of the message content)."""

    start: int = Field(ge=0)
    end: int = Field(ge=1)


EmphasisField = Text | CharSpanField
EmphasisList = Annotated[list[EmphasisField], Field(max_length=MAX_EMPHASIS_ENTRIES)]
HeadsField = Text | list[Text] | dict[Text, list[int]]


class SteeringParameters(Strict):
    """A steering method (`attnsteer.steering.methods`) and its parameters, all optional: a missing method is the
    server's default one, missing parameters keep the server's values (or the method's defaults for another
    method). Values are checked by the method itself (`make_method`), so every method's rules live in one place."""

    method: Text | None = Field(None, description="pasta | instaboost | spotlight (default: the server's method).")
    heads: HeadsField | None = Field(None, description="pasta: 'all', layers '12,13', 'L.H' pairs or {layer: [heads]}.")
    alpha: float | None = Field(None, description="pasta: factor on non-emphasised attention, in (0, 1].")
    mode: Text | None = Field(None, description="pasta: exclude | include.")
    boost: float | None = Field(None, description="instaboost: factor on attention to the emphasis, >= 1.")
    target: float | None = Field(None, description="spotlight: share of attention on the emphasis, in (0, 1).")
    granularity: Text | None = Field(None, description="spotlight: layer | head.")

    def given(self) -> dict[str, Any]:
        """The method and parameters this object sets (the fields that are not None), in field order."""
        return {name: getattr(self, name) for name in SteeringParameters.model_fields
                if getattr(self, name) is not None}


class SteeringFields(SteeringParameters):
    """The fields every steerable request shares (all optional: without emphasis the model runs plain).

    The steering is given either as flat fields (`method`, `alpha`, ...) or as one `steering` object
    (`{"method": ..., <parameters>}`, the form `SteeringMethod.to_dict()` writes), not both.
    """

    emphasis_markup: bool = Field(False, description="Read **...** in the prompt/messages as emphasis.")
    steering: SteeringParameters | None = Field(None, description="The method and its parameters as one object.")


class StreamOptions(Strict):
    include_usage: bool = False


class SamplingFields(Strict):
    """OpenAI sampling fields. temperature 0 (the default here) is greedy decoding."""

    model: Text
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0, le=2, description="0 is greedy decoding; any value > 0 samples.")
    top_p: float = Field(1.0, gt=0, le=1)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Text | list[Text] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    user: Text | None = None


class CompletionRequest(SamplingFields, SteeringFields):
    prompt: Text | list[Text]
    # One flat list, or one list per prompt: a single list type (not a union of the two), so a huge flat list
    # fails once, on its length, instead of once per item for the other union member.
    emphasis: Annotated[list[EmphasisField | EmphasisList], Field(max_length=MAX_EMPHASIS_LISTS)] | None = Field(
        None, description="Substrings or {start, end} spans; with a list of prompts, one list per prompt."
    )
    echo: Literal[False] = False
    logprobs: None = None


class TextPart(Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant"]
    content: Text | list[TextPart]
    name: Text | None = None
    emphasis: EmphasisList | None = Field(
        None, description="Substrings of this message's content, or {start, end} spans in it."
    )

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingFields, SteeringFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    emphasis: Annotated[list[Text], Field(max_length=MAX_EMPHASIS_ENTRIES)] | None = Field(
        None, description="Substrings found in the messages (first occurrence, in message order)."
    )


class AttentionRequest(SteeringFields):
    """The playground's attention view: one prompt, steered heads' attention share on the emphasis."""

    prompt: Text
    emphasis: EmphasisList | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens).model_dump()
