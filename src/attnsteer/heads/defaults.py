"""Default head sets shipped as package data, keyed by model identity and shape."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from attnsteer.errors import HeadConfigError
from attnsteer.heads.head_config import HeadConfig, HeadSpec
from attnsteer.heads.head_file import HeadFile, parse_head_file, read_head_file
from attnsteer.model_info import model_identity, model_shape


def shipped_head_sets() -> list[HeadFile]:
    """Every head file under `attnsteer/heads/default_sets/` (each names its model and shape)."""
    folder = files("attnsteer.heads").joinpath("default_sets")
    return [parse_head_file(json.loads(entry.read_text()), entry.name)
            for entry in folder.iterdir() if entry.name.endswith(".json")]


def default_heads(model: Any) -> HeadConfig:
    """The shipped head set for this exact model; an error (never a guess) for any other model."""
    identity, shape = model_identity(model), model_shape(model)
    for entry in shipped_head_sets():
        if entry.model_id == identity and (entry.num_layers, entry.num_heads) == shape:
            return entry.heads
    known = sorted(str(entry.model_id) for entry in shipped_head_sets())
    raise HeadConfigError(
        f"no default head set for model {identity!r} (shipped: {known}); pass heads= a JSON file, "
        "'all', layer numbers like '12', or 'L.H' pairs like '11.2,12.0'"
    )


def heads_for_model(spec: HeadSpec | None, model: Any) -> HeadConfig:
    """`spec` parsed and validated for `model`; None gives the model's shipped default set.

    A JSON file written by `attnsteer profile` names the model it was profiled on: using it with any
    other model (another identity or shape) is an error, since head indices mean nothing across models.
    """
    shape = model_shape(model)
    if spec is None:
        return default_heads(model)
    if isinstance(spec, Path) or (isinstance(spec, str) and spec.endswith(".json")):
        head_file = read_head_file(spec)
        check_profiled_for(head_file, str(spec), model_identity(model), shape)
        spec = head_file.heads
    return HeadConfig.parse(spec, *shape)


def check_profiled_for(head_file: HeadFile, name: str, identity: str, shape: tuple[int, int]) -> None:
    """Raise HeadConfigError when `head_file` names a model other than (identity, shape)."""
    if not head_file.names_model:
        return  # a plain PASTA head file carries no model
    profiled = (head_file.num_layers, head_file.num_heads)
    if head_file.model_id != identity or profiled != shape:
        raise HeadConfigError(
            f"head file {name} was profiled for model {head_file.model_id!r} ({profiled[0]} layers x "
            f"{profiled[1]} heads), not for {identity!r} ({shape[0]} x {shape[1]}); profile this model with "
            "`attnsteer profile` or pass heads as 'L.H' pairs"
        )
