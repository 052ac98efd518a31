"""Settings of the two context-steering systems, as frozen dataclasses validated on creation."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from attnsteer.errors import AttnsteerError

if TYPE_CHECKING:
    from attnsteer.tasks import Example, Task

# LLMSteer reads the context twice, after two different instructions; tokens that draw attention in
# both readings are the query-independent "important" tokens. The wording is ours, in the spirit of
# the paper (arXiv 2411.13009): two paraphrases of "read this context carefully".
DEFAULT_PREFIXES: tuple[str, str] = (
    "Read the following context carefully; questions about it will follow.\n\n",
    "Here is a passage. Remember its key facts.\n\n",
)


class ContextError(AttnsteerError):
    """A context, query, context method or one of the LLMSteer / AutoPASTA settings is invalid."""


class UnknownContextMethodError(ContextError):
    """A context method name that is not registered (see `attnsteer.context.context_method_names`)."""


@dataclass(frozen=True)
class LLMSteerConfig:
    """How LLMSteer picks the context tokens to emphasise.

    prefixes: the two instructions read before the context (one reading each).
    top_k: emphasise the tokens in the top-k of both readings; when None, k = ceil(top_fraction x the
        number of context tokens).
    top_fraction: in (0, 1], used when top_k is None (default 0.1).
    layers: the layers whose attention is accumulated (None: all).
    heads: the query heads accumulated in each of those layers (None: all).
    """

    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    top_k: int | None = None
    top_fraction: float = 0.1
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.prefixes) != 2 or any(not isinstance(p, str) or not p.strip() for p in self.prefixes):
            raise ContextError(f"LLMSteer needs exactly two non-empty prefix prompts, got {self.prefixes!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k <= 0):
            raise ContextError(f"top_k must be a positive integer (or None to use top_fraction), got {self.top_k!r}")
        fraction = self.top_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction) \
                or not 0.0 < fraction <= 1.0:
            raise ContextError(f"top_fraction must be in (0, 1], got {fraction!r}")
        for name in ("layers", "heads"):
            values = getattr(self, name)
            if values is not None and (not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                                         for v in values)):
                raise ContextError(f"{name} must be None (all) or a non-empty list of indices >= 0, got {values!r}")

    def k_for(self, num_tokens: int) -> int:
        """How many tokens each reading keeps, for a context of `num_tokens` tokens."""
        k = self.top_k if self.top_k is not None else math.ceil(self.top_fraction * num_tokens)
        return max(1, min(k, num_tokens))

    def validate_for(self, num_layers: int, num_heads: int) -> None:
        """Raise ContextError when a layer or head is out of the model's range."""
        for name, values, bound in (("layer", self.layers, num_layers), ("head", self.heads, num_heads)):
            bad = [v for v in values or () if v >= bound]
            if bad:
                raise ContextError(f"LLMSteer {name}s {bad} are out of range: the model has {bound} (0-{bound - 1})")


@dataclass(frozen=True)
class AutoPastaConfig:
    """How AutoPASTA lets the model pick the span to emphasise for each query.

    extraction_prompt: appended after the context; `{query}` is replaced by the query. The model's
        continuation should repeat the context's key sentence.
    num_sentences: how many context sentences (the best matches of the model's answer) to emphasise.
    extraction_tokens: tokens generated for the extraction.
    min_overlap: a sentence counts as named when at least this fraction of the words of the model's
        answer (first line, normalised as in SQuAD) are in it; when none is, AutoPASTA logs a warning
        and answers unsteered.
    """

    extraction_prompt: str = ("\n\nQuestion: {query}\nCopy the sentence of the text above that answers the "
                              "question.\nSentence:")
    num_sentences: int = 1
    extraction_tokens: int = 40
    min_overlap: float = 0.5

    def __post_init__(self) -> None:
        if "{query}" not in self.extraction_prompt:
            raise ContextError(f"the AutoPASTA extraction prompt must contain '{{query}}', got "
                               f"{self.extraction_prompt!r}")
        for name in ("num_sentences", "extraction_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ContextError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 < self.min_overlap <= 1.0:
            raise ContextError(f"min_overlap must be in (0, 1], got {self.min_overlap!r}")


def config_hash(data: dict[str, Any] | Any) -> str:
    """A stable sha256 of a JSON-able dict or a dataclass (the key part of a steering setting)."""
    if not isinstance(data, dict):
        data = asdict(data)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def split_context(task: Task, method: str, example: Example) -> tuple[str, str]:
    """(context, query) of an example; a task that marks no context is refused with the reason."""
    end = example.reference.get("context_end")
    if example.kind != "generate" or not isinstance(end, int) or not 0 < end < len(example.prompt):
        raise ContextError(f"method {method!r} needs generation examples that mark their context "
                           f"(tasks squad, gsm8k); task {task.name!r} example {example.id} does not")
    return example.prompt[:end], example.prompt[end:]
