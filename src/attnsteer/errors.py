"""Errors raised for bad input.

Every error a user can trigger with bad input is a ``ValueError`` subclass whose message names the
offending value and what is allowed, so the CLI can print it and exit with status 2.
"""

from __future__ import annotations


class AttnsteerError(ValueError):
    """Base class of every bad-input error raised by attnsteer."""


class MarkupError(AttnsteerError):
    """Emphasis markup (``**...**``) is unbalanced or malformed."""


class SpanError(AttnsteerError):
    """An emphasis span is empty, out of range, or not found in the prompt."""


class EmptyPromptError(AttnsteerError):
    """A prompt is empty (or only whitespace)."""


class NoEmphasisError(AttnsteerError):
    """Steering was asked for but no prompt has anything emphasised."""


class HeadConfigError(AttnsteerError):
    """A head set names a layer or head the model does not have, or is malformed."""


class SteeringConfigError(AttnsteerError):
    """A steering method's parameter (alpha, mode, boost, target, granularity) is out of its allowed range."""


class UnknownSteeringMethodError(SteeringConfigError):
    """A steering method name that is not registered (see `attnsteer.steering.methods.steering_method_names`)."""


class UnsupportedModelError(AttnsteerError):
    """The model's attention does not dispatch through transformers' AttentionInterface."""
