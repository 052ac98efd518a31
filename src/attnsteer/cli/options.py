"""Parsing of option values the CLI's subcommands share (no model, no torch)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from attnsteer.errors import AttnsteerError
from attnsteer.steering.config import GRANULARITIES, STEERING_MODES
from attnsteer.steering.methods import (
    PROFILING_FREE_DEFAULT,
    InstaBoost,
    Pasta,
    Spotlight,
    check_method,
    steering_method_names,
)

ModelOption = Annotated[str | None, typer.Option(
    "--model", help="An embedded model (gemma-3-270m-q4_k_m, the default; smollm2-135m-instruct, a chat model), "
    "a model directory or a hub id.")]
"""The `--model` option every command that loads a model takes."""

# Where the model's weights go (`attnsteer.models.placement`), on every command that loads a model; an option left
# out is None: the whole model on the CPU. `placement_options` checks them before the model loads.
DeviceMapOption = Annotated[str | None, typer.Option(
    "--device-map", help="Spread the model over devices with accelerate: auto, balanced, balanced_low_0 or "
    "sequential; one device (cuda:0; plain 'cuda' under torchrun: each rank's own GPU, cuda:LOCAL_RANK); or a "
    "JSON object {module: device} whose devices are GPU indices, device "
    "names, 'cpu' or 'disk' (offloaded), e.g. '{\"model.embed_tokens\": 0, \"model.layers\": \"disk\", ...}'.")]
MaxMemoryOption = Annotated[str | None, typer.Option(
    "--max-memory", help="The memory each device may hold when accelerate places the model (implies --device-map "
    "auto): device=size items, e.g. '0=20GiB,cpu=60GiB' (devices: a GPU index, cpu, mps, disk).")]
OffloadFolderOption = Annotated[str | None, typer.Option(
    "--offload-folder", help="With --device-map: where weights offloaded to 'disk' are written when the checkpoint "
    "cannot be read in place (.bin files).")]

ChatOption = Annotated[str, typer.Option(
    "--chat", help="Prompts through the model's chat template: auto (when the tokenizer has one), on "
    "(a plain System/User/Assistant template for a model without one) or off.")]
"""The `--chat` option of `eval`, `profile` and `ask` (`attnsteer.chat.resolve_chat`)."""

# The steering options of `generate`, `chat` and `ask`: the method (`attnsteer.steering.methods`) and each
# method's parameters; an option left out is None (the method's own default). `check_steering` checks them.
SteeringOption = Annotated[str | None, typer.Option(
    "--steering", help=f"The steering method: {', '.join(steering_method_names())}. Default: pasta when --heads, "
    "--alpha or --mode is given or the model ships a head set; else the method the options given belong to; else "
    f"{PROFILING_FREE_DEFAULT}.")]
HeadsOption = Annotated[str | None, typer.Option(
    "--heads", help="pasta: the heads to steer: a JSON file, 'all', layers '12,13' or 'L.H' pairs '11.2,12.0'. "
    "Default: the model's shipped set.")]
AlphaOption = Annotated[float | None, typer.Option(
    "--alpha", help=f"pasta: factor on non-emphasised attention, in (0, 1] (default {Pasta.alpha}).")]
ModeOption = Annotated[str | None, typer.Option(
    "--mode", help=f"pasta: {' or '.join(STEERING_MODES)} (down-weight the rest, or up-weight the span; default "
    f"{Pasta.mode}).")]
BoostOption = Annotated[float | None, typer.Option(
    "--boost", help=f"instaboost: factor on attention to the emphasised tokens, >= 1 (default {InstaBoost.boost}).")]
TargetOption = Annotated[float | None, typer.Option(
    "--target", help=f"spotlight: the share of attention the span is raised to where below it, in (0, 1) "
    f"(default {Spotlight.target}).")]
GranularityOption = Annotated[str | None, typer.Option(
    "--granularity", help=f"spotlight: {' or '.join(GRANULARITIES)} (a layer's average share, or each head's; "
    f"default {Spotlight.granularity}).")]


class OptionError(AttnsteerError):
    """A command-line option's value cannot be parsed, or does not go with the other options."""


def comma_separated(text: str, option: str, kind: type[int] | type[float] = float) -> list:
    """'0.01,0.5' -> [0.01, 0.5] (`kind` int or float); a bad item is an OptionError naming `option`."""
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise OptionError(f"{option} takes comma-separated {noun}, got {text!r}") from None


def check_heads(spec: str | None) -> None:
    """A --heads value that names a JSON file: read and check the file now, before any model loads
    (`heads.read_head_file`); lists and 'all' are checked against the model's shape once it is loaded."""
    if spec is not None and spec.endswith(".json"):
        from attnsteer.heads import read_head_file

        read_head_file(spec)


def cli_option(parameter: str) -> str:
    """How the CLI spells a steering parameter: "alpha" -> "--alpha"; the method itself is "--steering"."""
    return "--steering" if parameter == "method" else f"--{parameter}"


def check_steering(method: str | None, spell: Callable[[str], str] = cli_option, **given: Any) -> dict[str, Any]:
    """The `Steerer` keyword arguments for steering `method` with the parameters `given` (None: not given),
    checked before any model loads: an unknown method (the registry's message with the closest name), a
    parameter the method does not take, and each value's range (the method's own check). A head set is
    checked for its file here (`check_heads`) and against the model's shape once it loads.

    method None: the method the given parameters belong to (as `Steerer` chooses); nothing given: {} (the
    `Steerer`'s default). spell: how messages name a parameter (`cli_option`; the lm-eval adapter's `str`).
    """
    parameters = {key: value for key, value in given.items() if value is not None}
    if method is None and not parameters:
        return {}
    name = check_method(method, parameters, spell)
    check_heads(parameters.get("heads"))
    return {"method": name, **parameters}


def placement_options(device_map: str | None, max_memory: str | None, offload_folder: str | None,
                      ) -> dict[str, Any]:
    """`load_model`'s placement keyword arguments from --device-map / --max-memory / --offload-folder, checked
    before the model loads (`attnsteer.models.placement`; {}: the whole model on the CPU)."""
    from attnsteer.distributed import rank_device
    from attnsteer.models.placement import check_placement, parse_device_map, parse_max_memory

    device_map = rank_device(device_map) if device_map is not None else None  # torchrun: "cuda" is this rank's GPU
    return check_placement(parse_device_map(device_map), parse_max_memory(max_memory), offload_folder)


def check_chat(mode: str) -> str:
    """A --chat value, checked before any model loads."""
    from attnsteer.chat import CHAT_MODES

    if mode not in CHAT_MODES:
        raise OptionError(f"--chat takes one of {', '.join(CHAT_MODES)}, got {mode!r}")
    return mode


def command_line() -> str:
    """This process's command as `attnsteer <arguments>`, shell-quoted (provenance in written files)."""
    return shlex.join(["attnsteer", *sys.argv[1:]])
