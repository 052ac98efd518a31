"""Default head sets shipped as package data, keyed by model identity and shape."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from attnsteer.errors import HeadConfigError
from attnsteer.heads.head_config import HeadConfig, HeadSpec
from attnsteer.models.identity import model_identity


def shipped_head_sets() -> list[dict[str, Any]]:
    """Every head set file under `attnsteer/heads/default_sets/` (model_id, shape, heads, provenance)."""
    folder = files("attnsteer.heads").joinpath("default_sets")
    return [json.loads(entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".json")]


def default_heads(model: PreTrainedModel) -> HeadConfig:
    """The shipped head set for this exact model; an error (never a guess) for any other model."""
    identity = model_identity(model)
    config = model.config.get_text_config()
    for entry in shipped_head_sets():
        if entry["model_id"] == identity and (entry["num_layers"], entry["num_heads"]) == (
            config.num_hidden_layers, config.num_attention_heads,
        ):
            return HeadConfig.from_dict(entry["heads"])
    known = sorted(entry["model_id"] for entry in shipped_head_sets())
    raise HeadConfigError(
        f"no default head set for model {identity!r} (shipped: {known}); pass heads= a JSON file, "
        "'all', layer numbers like '12', or 'L.H' pairs like '11.2,12.0'"
    )


def heads_for_model(spec: HeadSpec | None, model: PreTrainedModel) -> HeadConfig:
    """`spec` parsed and validated for `model`; None gives the model's shipped default set.

    A JSON file written by `attnsteer profile` names the model it was profiled on: using it with any
    other model (another identity or shape) is an error, since head indices mean nothing across models.
    """
    config = model.config.get_text_config()
    shape = (config.num_hidden_layers, config.num_attention_heads)
    if spec is None:
        return default_heads(model)
    _check_profiled_for(spec, model_identity(model), shape)
    return HeadConfig.parse(spec, *shape)


def _check_profiled_for(spec: HeadSpec, identity: str, shape: tuple[int, int]) -> None:
    if not (isinstance(spec, Path) or (isinstance(spec, str) and spec.endswith(".json"))):
        return
    try:
        entry = json.loads(Path(spec).read_text())
    except (OSError, ValueError):
        return  # HeadConfig.load reports unreadable files
    if not isinstance(entry, dict) or "model_id" not in entry:
        return  # a plain PASTA head file carries no model
    profiled = (entry.get("num_layers"), entry.get("num_heads"))
    if entry["model_id"] != identity or profiled != shape:
        raise HeadConfigError(
            f"head file {spec} was profiled for model {entry['model_id']!r} ({profiled[0]} layers x {profiled[1]} "
            f"heads), not for {identity!r} ({shape[0]} x {shape[1]}); profile this model with `attnsteer profile` "
            "or pass heads as 'L.H' pairs"
        )
