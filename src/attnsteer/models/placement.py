"""Where a model's weights go: accelerate's `device_map`, `max_memory` and offload folder, checked early.

A leaf module (no torch import): the CLI and the lm-eval adapter check these values before a model (or torch)
loads, and `load_model` passes the checked values to `from_pretrained`. accelerate places each module on a
device; a module mapped to "cpu" or "disk" is offloaded (its weights wait there and are brought to the main
device when it runs). Steering needs nothing more: every tensor the steered attention builds follows the
layer's own device (`steering.state`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnsteer.errors import AttnsteerError

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
"""accelerate's placements for a whole model; only these take a `max_memory`."""
DEVICE = re.compile(r"cpu|mps|(cuda|xpu|npu|hpu|mlu)(:\d+)?|\d+")
MEMORY_DEVICES = ("cpu", "mps", "disk")  # with GPU indices: the keys accelerate's max_memory knows
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?", re.IGNORECASE)
UNITS = {"B": 1, **{f"{prefix}B": 1000**power for power, prefix in enumerate("KMGT", 1)},
         **{f"{prefix}IB": 1024**power for power, prefix in enumerate("KMGT", 1)}}
ALLOWED_MAP = (f"a placement ({', '.join(STRATEGIES)}), a device (cpu, cuda:1, 0, mps), or {{module: device}} "
               "whose devices are GPU indices, device names, 'cpu' or 'disk' (offloaded)")

DeviceMap = str | int | dict[str, int | str]


class PlacementError(AttnsteerError):
    """A device_map, max_memory or offload folder that accelerate cannot place a model with."""


def check_placement(device_map: Any = None, max_memory: Any = None, offload_folder: Any = None) -> dict[str, Any]:
    """The placement settings given, checked, as `load_model` / `from_pretrained` keyword arguments ({}: none).

    device_map: a strategy name, one device, or {module name: device} (`check_device_map`). max_memory: {GPU
    index or 'cpu' / 'mps' / 'disk': size} (`check_max_memory`), only with a strategy; alone it means
    device_map "auto". offload_folder: where "disk" modules' weights are written when the checkpoint cannot be
    read in place (.bin files, renamed weights); only with a device_map.
    """
    device_map, max_memory = check_device_map(device_map), check_max_memory(max_memory)
    if max_memory is not None and device_map is None:
        device_map = "auto"  # accelerate reads max_memory only when it places the modules itself
    if max_memory is not None and device_map not in STRATEGIES:
        raise PlacementError(f"max_memory goes with device_map {', '.join(STRATEGIES)} (accelerate's placement), "
                             f"not with device_map {device_map!r}")
    if offload_folder is not None and device_map is None:
        raise PlacementError("offload_folder goes with a device_map (it holds the weights offloaded to 'disk')")
    folder = None if offload_folder is None else str(Path(str(offload_folder)).expanduser())
    given = {"device_map": device_map, "max_memory": max_memory, "offload_folder": folder}
    return {name: value for name, value in given.items() if value is not None}


def check_device_map(device_map: Any) -> DeviceMap | None:
    """`device_map` as `from_pretrained` takes it: a strategy, one device (a GPU index as int), or {module: device}.

    "meta" is refused (a module there has no weights: it would compute nothing), and so is "disk" for the whole
    model (no device would be left to compute on).
    """
    if device_map is None:
        return None
    if isinstance(device_map, Mapping):
        if not device_map:
            raise PlacementError(f"device_map is an empty mapping; give {ALLOWED_MAP}")
        return {_module_name(name): _module_device(name, device) for name, device in device_map.items()}
    if isinstance(device_map, str) and device_map.strip() in STRATEGIES:
        return device_map.strip()
    if device_map in ("meta", "disk"):
        raise PlacementError(f"device_map {device_map!r} for the whole model leaves no weights on a device to "
                             f"compute with; give {ALLOWED_MAP}")
    device = _device(device_map)
    if device is None:
        raise PlacementError(f"device_map must be {ALLOWED_MAP}; got {device_map!r}")
    return device


def check_max_memory(max_memory: Any) -> dict[int | str, int] | None:
    """{GPU index, 'cpu', 'mps' or 'disk': bytes}; sizes may be given as text ("20GiB", "500MB", "1.5GB")."""
    if max_memory is None:
        return None
    if not isinstance(max_memory, Mapping) or not max_memory:
        raise PlacementError(f"max_memory must map devices to sizes, e.g. {{0: '20GiB', 'cpu': '60GiB'}}; "
                             f"got {max_memory!r}")
    return {_memory_device(device): memory_size(size, device) for device, size in max_memory.items()}


def memory_size(size: Any, device: Any = None) -> int:
    """A size in bytes: an integer, or a number with a unit (B, KB, MB, GB, TB; KiB, MiB, GiB, TiB)."""
    where = "" if device is None else f" for {device!r}"
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    match = SIZE.fullmatch(str(size).strip()) if isinstance(size, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise PlacementError(f"max_memory{where} must be a positive number of bytes or a size such as '20GiB' or "
                             f"'500MB' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB); got {size!r}")
    return int(float(match.group(1)) * UNITS[(match.group(2) or "B").upper()])


def parse_device_map(text: str | None, option: str = "--device-map") -> DeviceMap | None:
    """A device map given as text: a strategy, a device, or a JSON object {module: device}."""
    if text is None:
        return None
    if text.strip().startswith("{"):
        try:
            return check_device_map(json.loads(text))
        except json.JSONDecodeError as error:
            raise PlacementError(f"{option}: not a valid JSON object ({error.msg} at character {error.pos}): "
                                 f"{text!r}") from None
    return check_device_map(text)


def parse_max_memory(text: str | None, option: str = "--max-memory", separator: str = ",",
                     ) -> dict[int | str, int] | None:
    """Memory caps given as text, `device=size` items joined by `separator`: '0=20GiB,cpu=60GiB'."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(separator) if item.strip()]
    if not items or any("=" not in item for item in items):
        raise PlacementError(f"{option} takes device=size items joined by {separator!r} (devices: a GPU index, "
                             f"{', '.join(MEMORY_DEVICES)}), e.g. '0=20GiB{separator}cpu=60GiB'; got {text!r}")
    return check_max_memory(dict(item.split("=", 1) for item in items))


def _device(value: Any) -> int | str | None:
    """A GPU index (int), a device name, or 'disk'; None when `value` is none of them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == "disk" or (DEVICE.fullmatch(text) and not text.isdigit()):
        return text
    return int(text) if text.isdigit() else None


def _module_name(name: Any) -> str:
    if not isinstance(name, str):
        raise PlacementError(f"device_map keys must be module names such as 'model.layers.3' ('' for the whole "
                             f"model); got {name!r}")
    return name


def _module_device(name: str, device: Any) -> int | str:
    if device == "meta":
        raise PlacementError(f"device_map[{name!r}] is 'meta': a module there has no weights and would compute "
                             "nothing; use 'disk' (with an offload folder if needed) to keep weights out of memory")
    placed = _device(device)
    if placed is None:
        raise PlacementError(f"device_map[{name!r}] must be a GPU index, a device name (cpu, cuda:1, mps) or "
                             f"'disk'; got {device!r}")
    return placed


def _memory_device(device: Any) -> int | str:
    if isinstance(device, str) and device.strip() in MEMORY_DEVICES:
        return device.strip()
    placed = _device(device)
    if not isinstance(placed, int):
        raise PlacementError(f"max_memory keys must be a GPU index (0, 1, ...) or one of {', '.join(MEMORY_DEVICES)}"
                             f"; got {device!r}")
    return placed
