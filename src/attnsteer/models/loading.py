"""`load_model`: the embedded default, a local directory, or a hub id, with steering installed.

What the user named is checked before transformers sees it (`model_source`), so a typo in a path says
"no such directory" rather than a hub-id or tokenizer-conversion error; whatever transformers still
raises comes back as one line. Its own "Loading weights" bar is hidden (`quiet_loading`).
A device_map / max_memory spreads the model over devices with accelerate (`placement.py`, `check_placed`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from attnsteer.errors import AttnsteerError
from attnsteer.models.embedded import (
    EMBEDDED_MODEL_ID,
    EMBEDDED_MODELS,
    embedded_model,
    load_saved_model,
    prepare_embedded_model,
)
from attnsteer.models.placement import DeviceMap, check_placement
from attnsteer.steering.installation import install

# "name" or "org/name", as the hub spells repository ids; anything else that does not exist is a missing path.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


class ModelLoadError(AttnsteerError):
    """The model path or id could not be loaded."""


def load_model(
    name_or_path: str | Path | None = None, dtype: torch.dtype = torch.float32, device: str | None = None,
    device_map: DeviceMap | None = None, max_memory: Mapping[int | str, int | str] | None = None,
    offload_folder: str | Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in eval mode, with the steered attention installed.

    name_or_path: None or "embedded" for the embedded Gemma 3 270M; an embedded model's identity
    (`EMBEDDED_MODELS`: "gemma-3-270m-q4_k_m", "smollm2-135m-instruct"); else a directory (see
    `model_source`) or a hub id loaded the usual transformers way (nothing is downloaded on
    machines without network). device: the one device the whole model goes to (default cpu).
    device_map, max_memory, offload_folder: spread the model over devices with accelerate instead
    (`placement.check_placement`; max_memory alone means device_map "auto"); steering stays exact on every
    layer's device, offloaded layers included (`check_placed` refuses the two maps it cannot run with).
    Every failure is a one-line ModelLoadError (a bad placement: `PlacementError`).
    """
    placement = check_placement(device_map, max_memory, offload_folder)
    if placement and device is not None:
        raise ModelLoadError(f"give device ({device!r}) or a device_map / max_memory, not both: a device_map "
                             "already says where each part of the model goes")
    identity = embedded_identity(name_or_path)
    source = prepare_embedded_model(identity) if identity else model_source(name_or_path)  # type: ignore[arg-type]
    try:
        with quiet_loading():
            tokenizer, model = _load_from(source, identity, dtype, placement)
    except (OSError, ValueError, RuntimeError, AssertionError) as error:  # AssertionError: torch lacks a device
        where = "" if isinstance(source, Path) else " (no such directory here, so it was read as a hub id)"
        raise ModelLoadError(f"cannot load a causal LM from {str(source)!r}{where}: {one_line(error)}") from None
    if placement:
        check_placed(model)
    else:
        model.to(device or "cpu")
    model.eval()
    install(model)
    return model, tokenizer


def _load_from(source: Path | str, identity: str | None, dtype: torch.dtype, placement: dict[str, Any],
               ) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """(tokenizer, model) from `source`; an embedded model's own copy is read directly (`load_saved_model`, the
    same model, faster) unless accelerate places it (`placement`: `from_pretrained`'s device_map etc.)."""
    if identity:
        tokenizer = embedded_model(identity).load_tokenizer(source)
        if not placement:
            return tokenizer, load_saved_model(source, dtype)  # type: ignore[arg-type]
    else:
        tokenizer = AutoTokenizer.from_pretrained(source)
    return tokenizer, AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **placement)


def check_placed(model: PreTrainedModel) -> None:
    """Refuse the accelerate placements steering cannot run with, once the model is placed (ModelLoadError).

    - the input embeddings offloaded to "disk": inputs go to `model.device`, the device of the first weights,
      which is then "meta" (transformers' own `generate` fails there too);
    - tied weights (Gemma's embeddings and output layer) split between "disk" and a device: accelerate finds
      no offloaded copy of the tied one and fails at the first forward.
    """
    if model.device.type == "meta":
        first = next(name for name, _ in model.named_parameters()).rsplit(".", 1)[0]
        raise ModelLoadError(f"the device map offloads the model's first weights ({first}, the input embeddings) "
                             "to 'disk', so inputs would have no device to go to; map that module to a device "
                             "(cpu or a GPU), or give max_memory more room")
    placed = getattr(model, "hf_device_map", None) or {}
    for tied, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
        devices = {_placed_on(tied, placed), _placed_on(source, placed)}
        if "disk" in devices and len(devices) > 1:
            raise ModelLoadError(f"the device map puts the tied weights {tied} and {source} on "
                                 f"{' and '.join(sorted(map(str, devices)))}: a weight offloaded to 'disk' cannot be "
                                 "tied to one on another device; map both modules to the same device")


def _placed_on(parameter: str, device_map: Mapping[str, Any]) -> Any:
    """The device `device_map` gives `parameter`: that of its longest module prefix ('' is the whole model)."""
    owners = [name for name in device_map if name == "" or parameter.startswith(name + ".")]
    return device_map[max(owners, key=len)] if owners else None


def embedded_identity(name_or_path: str | Path | None) -> str | None:
    """The embedded model `name_or_path` names (None and "embedded" mean the default), else None."""
    if name_or_path in (None, "embedded"):
        return EMBEDDED_MODEL_ID
    return name_or_path if isinstance(name_or_path, str) and name_or_path in EMBEDDED_MODELS else None


def model_source(name_or_path: str | Path) -> Path | str:
    """The directory to load, checked to hold a model, or a hub id passed on unchanged.

    An existing path must be a directory with config.json and tokenizer files. A string that names no
    existing path is a hub id when it looks like one ("name" or "org/name"); anything else (a Path, or a
    string like "/x/y" or "./x") is a missing directory.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"not a directory: {text!r} (give a model directory or a hub id)")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"no model files (config.json and the weights) in {text!r}")
        if not any((path / name).is_file() for name in TOKENIZER_FILES):
            raise ModelLoadError(f"no tokenizer files ({', '.join(TOKENIZER_FILES)}) in {text!r}")
        return path
    if isinstance(name_or_path, str) and HUB_ID.fullmatch(text):
        return text
    raise ModelLoadError(f"no such directory: {text!r} (give a model directory or a hub id like 'org/name')")


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' progress bars ("Loading weights") and the hub's retry warnings inside the block.

    Errors still raise; the previous tqdm hook and hub log level come back afterwards.
    """
    from transformers.utils import logging as transformers_logging

    previous = transformers_logging.set_tqdm_hook(
        lambda factory, args, kwargs: factory(*args, **{**kwargs, "disable": True}))
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        transformers_logging.set_tqdm_hook(previous)
        hub_logger.setLevel(level)


def one_line(error: BaseException) -> str:
    """The error's message with its lines joined by spaces (transformers' messages span several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())
