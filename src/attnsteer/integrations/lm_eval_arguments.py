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


def placement_arguments(parallelize: Any = False, device_map: Any = None, max_memory_per_gpu: Any = None,
                        max_cpu_memory: Any = None, offload_folder: Any = None,
                        gpus: dict[int, int] | None = None) -> dict[str, Any]:
    """`load_model`'s device_map / max_memory / offload_folder for lm-eval's model-parallel arguments, checked
    before the model loads ({}: the model goes to one device).

    parallelize=true, or a device_map (a placement, a device, or {module: device} in JSON model_args), spreads
    the model over devices with accelerate (device_map default "auto"), as lm-eval's hf model does with
    parallelize=True. max_memory_per_gpu / max_cpu_memory cap each GPU / the CPU ("20GiB"); they go with a
    placement (auto, balanced, ...). gpus: {GPU index: free bytes} this process may use (`process_gpu_memory`,
    when several processes share the machine), each capped by max_memory_per_gpu; None: every GPU.
    """
    from attnsteer.models.placement import STRATEGIES, check_placement, parse_device_map

    placed = parse_device_map(device_map, "device_map") if isinstance(device_map, str) else device_map
    caps = [name for name, value in (("max_memory_per_gpu", max_memory_per_gpu), ("max_cpu_memory", max_cpu_memory))
            if value is not None]
    if not (parse_bool(parallelize, "parallelize") or placed is not None):
        if caps:
            raise LMEvalArgumentError(f"{' and '.join(caps)} go with parallelize=true or a device_map (they cap "
                                      "what accelerate places on each device)")
        return {}
    placed = "auto" if placed is None else placed
    if caps and placed not in STRATEGIES:
        raise LMEvalArgumentError(f"{' and '.join(caps)} go with device_map {', '.join(STRATEGIES)} (accelerate's "
                                  f"placement), not with device_map {placed!r}")
    memory = _memory_caps(gpus, max_memory_per_gpu, max_cpu_memory) if placed in STRATEGIES else {}
    return check_placement(placed, memory or None, offload_folder)


def _memory_caps(gpus: dict[int, int] | None, per_gpu: Any, cpu: Any) -> dict[int | str, Any]:
    """accelerate's max_memory: each of `gpus` (None: every GPU here when `per_gpu` is given) at `per_gpu`, else
    at its free memory; the CPU at `cpu` when given."""
    if gpus is None and per_gpu is not None:
        gpus = dict.fromkeys(range(torch.cuda.device_count()), 0)
    memory: dict[int | str, Any] = {gpu: free if per_gpu is None else per_gpu for gpu, free in (gpus or {}).items()}
    if cpu is not None:
        memory["cpu"] = cpu
    return memory
