"""`ServerSettings`: the limits and batching knobs of one server, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from attnsteer.errors import AttnsteerError

CHARS_PER_TOKEN = 64
Batching = Literal["continuous", "static"]
BATCHING_MODES: tuple[str, ...] = get_args(Batching)


class ServerSettingsError(AttnsteerError):
    """A server limit is out of range."""


@dataclass(frozen=True)
class ServerSettings:
    """Limits of one server.

    batching: "continuous" (rows join the running batch between decode steps and leave when they end) or
        "static" (rows that arrive together are decoded together until the longest ends; others wait).
    max_batch: rows (prompts) decoded together.
    max_waiting: rows that may wait for a place in the batch; beyond it requests get 429 with Retry-After.
    batch_wait_s: how long the batcher waits for more rows after the first arrives, while nothing runs (seconds).
    prefix_cache_bytes: the steered prefix cache's budget (bytes of keys and values, least recently used blocks
        go first; `attnsteer.context.PrefixCache`): a request reuses the longest cached block-aligned prefix
        with the same tokens, emphasis flags and steering. 0 turns it off. Continuous batching only (static
        batches prefill their rows together, left-padded).
    max_prompt_tokens: longest prompt accepted (tokens, after the chat template); longer -> 400.
    max_tokens: the most tokens one request may ask to generate; more -> 400.
    default_max_tokens: tokens generated when a request does not say (OpenAI's completions default is 16).
    model_name: the id served at /v1/models and accepted in the `model` field (None: the model's identity).
    max_body_bytes: largest request body accepted; larger -> 413 before anything is parsed.
    Derived: `max_prompt_chars` (CHARS_PER_TOKEN x max_prompt_tokens), checked before any span search or
    tokenisation, so a huge prompt is refused at once.
    """

    batching: Batching = "continuous"
    max_batch: int = 8
    max_waiting: int = 64
    batch_wait_s: float = 0.02
    prefix_cache_bytes: int = 512 * 1024**2
    max_prompt_tokens: int = 2048
    max_tokens: int = 256
    default_max_tokens: int = 16
    model_name: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024

    @property
    def max_prompt_chars(self) -> int:
        """A prompt longer than this cannot fit in max_prompt_tokens (no tokenizer averages more characters
        per token), so it is refused before the (slower) span search and tokenisation."""
        return CHARS_PER_TOKEN * self.max_prompt_tokens

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_waiting", "max_prompt_tokens", "max_tokens", "default_max_tokens",
                     "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ServerSettingsError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.prefix_cache_bytes, bool) or not isinstance(self.prefix_cache_bytes, int) \
                or self.prefix_cache_bytes < 0:
            raise ServerSettingsError(f"prefix_cache_bytes must be an integer >= 0 (0: no prefix cache), got "
                                      f"{self.prefix_cache_bytes!r}")
        if self.batching not in BATCHING_MODES:
            raise ServerSettingsError(f"batching must be one of {BATCHING_MODES}, got {self.batching!r}")
        if self.max_waiting < self.max_batch:
            raise ServerSettingsError(
                f"max_waiting ({self.max_waiting}) must be at least max_batch ({self.max_batch})"
            )
        if self.default_max_tokens > self.max_tokens:
            raise ServerSettingsError(
                f"default_max_tokens ({self.default_max_tokens}) must not exceed max_tokens ({self.max_tokens})"
            )
        if not 0 <= self.batch_wait_s <= 1:
            raise ServerSettingsError(f"batch_wait_s must be in [0, 1] seconds, got {self.batch_wait_s!r}")
