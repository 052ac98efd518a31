"""Request and response bodies (pydantic), OpenAI-compatible plus the emphasis fields.

Unknown fields are refused (400 naming the field) rather than silently ignored; OpenAI fields this
server cannot honour accept only their neutral value (n=1, echo=false, logprobs=null).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CharOffsets(Strict):
    """A character span [start, end) of the clean text (markup removed; for chat, of the message content)."""

    start: int = Field(ge=0)
    end: int = Field(ge=1)


EmphasisItem = str | CharOffsets
HeadsField = str | list[str] | dict[str, list[int]]


class SteeringFields(Strict):
    """The fields every steerable request shares (all optional: without emphasis the model runs plain)."""

    emphasis_markup: bool = Field(False, description="Read **...** in the prompt/messages as emphasis.")
    heads: HeadsField | None = Field(None, description="'all', layers '12,13', 'L.H' pairs or {layer: [heads]}.")
    alpha: float | None = Field(None, gt=0, le=1, description="Factor on non-emphasised attention, in (0, 1].")
    mode: Literal["exclude", "include"] | None = None


class StreamOptions(Strict):
    include_usage: bool = False


class SamplingFields(Strict):
    """OpenAI sampling fields. temperature 0 (the default here) is greedy decoding."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None


class CompletionRequest(SamplingFields, SteeringFields):
    prompt: str | list[str]
    emphasis: list[EmphasisItem] | list[list[EmphasisItem]] | None = Field(
        None, description="Substrings or {start, end} spans; with a list of prompts, one list per prompt."
    )
    echo: Literal[False] = False
    logprobs: None = None


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None
    emphasis: list[EmphasisItem] | None = Field(
        None, description="Substrings of this message's content, or {start, end} spans in it."
    )

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingFields, SteeringFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    emphasis: list[str] | None = Field(
        None, description="Substrings found in the messages (first occurrence, in message order)."
    )


class AttentionRequest(SteeringFields):
    """The playground's attention view: one prompt, steered heads' attention share on the emphasis."""

    prompt: str
    emphasis: list[EmphasisItem] | None = None


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
