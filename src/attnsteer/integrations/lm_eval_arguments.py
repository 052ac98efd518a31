"""The `attnsteer` lm-eval model's arguments: each parsed and checked before the model loads.

Every bad value raises `LMEvalArgumentError` (an unknown mark: `EmphasisRuleError`) naming the argument
and the value.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from attnsteer.errors import AttnsteerError
from attnsteer.integrations.emphasis_rules import EmphasisRuleError

log = logging.getLogger("lm_eval.attnsteer")  # follows lm-eval's log level and format
MARKS = {"none": None, "star": "*", "quote": '"'}
AUTO_BATCH_SIZE = 8  # `batch_size=auto` without max_batch_size


class LMEvalArgumentError(AttnsteerError):
    """A model argument (`--model_args`, --batch_size, --max_batch_size, --device) of the lm-eval adapter is bad."""


def parse_mark(mark: str | None) -> str | None:
    key = "none" if mark is None else str(mark)
    if key not in MARKS:
        raise EmphasisRuleError(f"unknown mark {mark!r}; allowed: {', '.join(MARKS)}")
    return MARKS[key]


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise LMEvalArgumentError(f"{name} must be true or false, got {value!r}")


def resolve_device(device: Any) -> str:
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


def parse_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LMEvalArgumentError(f"{name} must be a number, got {value!r}") from None


def steering_arguments(method: Any = None, heads: Any = None, alpha: Any = None, mode: Any = None, boost: Any = None,
                       target: Any = None, granularity: Any = None) -> dict[str, Any]:
    """The `Steerer` keyword arguments for the steering model arguments, checked through the steering-method
    registry before the model loads (`attnsteer.cli.options.check_steering`: an unknown method with the closest
    name, a parameter of another method, a value out of range). Unset (None) arguments are the method's
    defaults; no method and no parameters: the `Steerer`'s default (PASTA on the model's shipped heads, else the
    profiling-free default). heads: `default` is the shipped set, `+` stands for `,` (lm-eval splits on commas).
    """
    from attnsteer.cli.options import check_steering

    numbers = {name: None if value is None else parse_float(value, name)
               for name, value in (("alpha", alpha), ("boost", boost), ("target", target))}
    head_spec = None if heads in (None, "default") else str(heads).replace("+", ",")
    return check_steering(None if method is None else str(method), spell=str, heads=head_spec, mode=mode,
                          granularity=granularity, **numbers)


def parse_batch_size(value: Any, max_batch_size: Any = None) -> int:
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
