"""Default head sets, keyed by model identity and shape: the ones shipped as package data, and the ones a
user installed with `attnsteer profile --install` (`cache_dir()/heads/`, checked first: a user's own profile of
a model wins over the shipped one).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from attnsteer.errors import HeadConfigError
from attnsteer.heads.head_config import HeadConfig, HeadSpec
from attnsteer.heads.head_file import HeadFile, parse_head_file, read_head_file
from attnsteer.model_info import model_identity, model_shape
from attnsteer.models.embedded import cache_dir


@dataclass(frozen=True)
class DefaultHeadSet:
    """A model's default head set and where it came from: "shipped", or the installed file's path."""

    head_file: HeadFile
    source: str

    def describe(self) -> str:
        """For the log line that names the Steerer's default, e.g. "the model's shipped head set"."""
        if self.source == "shipped":
            return "the model's shipped head set"
        return f"the head set installed at {self.source} by `attnsteer profile --install`"


def shipped_head_sets() -> list[HeadFile]:
    """Every head file under `attnsteer/heads/default_sets/` (each names its model and shape)."""
    folder = files("attnsteer.heads").joinpath("default_sets")
    return [parse_head_file(json.loads(entry.read_text()), entry.name)
            for entry in folder.iterdir() if entry.name.endswith(".json")]


def installed_heads_dir() -> Path:
    """Where `attnsteer profile --install` puts head sets: `cache_dir()/heads` (`$ATTNSTEER_CACHE`)."""
    return cache_dir() / "heads"


def installed_head_path(identity: str, shape: tuple[int, int]) -> Path:
    """The installed head file of a model: its identity made a file name (plus a hash of it, so two identities
    never share a file), and its shape."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("_")[:80] or "model"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return installed_heads_dir() / f"{name}-{digest}__{shape[0]}x{shape[1]}.json"


def install_head_set(content: dict[str, Any]) -> Path:
    """Write a head file of `attnsteer profile` (which names its model) where `default_heads` finds it for
    that model; replaces an earlier install for the same model. Returns the path written."""
    head_file = parse_head_file(content, "to install")
    if not head_file.names_model or head_file.num_layers is None or head_file.num_heads is None:
        raise HeadConfigError("only a head file that names its model (model_id, num_layers, num_heads: what "
                              "`attnsteer profile` writes) can be installed as a model's default")
    if head_file.model_id == "unknown":
        raise HeadConfigError("the head file's model has no name or path (model_id 'unknown'), so no later load "
                              "could be matched to it; profile a model loaded from a name or a directory")
    if head_file.heads.num_heads_steered == 0:
        raise HeadConfigError("the head set to install is empty: profiling selected no heads, so there is "
                              "nothing to steer by default; select again with --from-scores and another --top-k")
    path = installed_head_path(head_file.model_id, (head_file.num_layers, head_file.num_heads))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n")
    return path


def default_head_set(model: Any) -> DefaultHeadSet | None:
    """The model's default head set: the installed one for this identity and shape, else the shipped one,
    else None."""
    identity, shape = model_identity(model), model_shape(model)
    installed = installed_head_path(identity, shape)
    if installed.is_file():
        head_file = read_head_file(installed)
        check_profiled_for(head_file, str(installed), identity, shape)
        return DefaultHeadSet(head_file, str(installed))
    for entry in shipped_head_sets():
        if entry.model_id == identity and (entry.num_layers, entry.num_heads) == shape:
            return DefaultHeadSet(entry, "shipped")
    return None


def default_heads(model: Any) -> HeadConfig:
    """The default head set for this exact model (`default_head_set`); an error (never a guess) for any other."""
    found = default_head_set(model)
    if found is not None:
        return found.head_file.heads
    known = sorted(str(entry.model_id) for entry in shipped_head_sets())
    raise HeadConfigError(
        f"no default head set for model {model_identity(model)!r} (shipped: {known}; none installed by "
        "`attnsteer profile --install`); pass heads= a JSON file, 'all', layer numbers like '12', or 'L.H' pairs "
        "like '11.2,12.0'"
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
