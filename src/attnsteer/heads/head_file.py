"""The one reader of head files: PASTA's `{layer: [heads]}`, attnsteer's profiled head files, ranked lists.

Forms accepted (JSON):
- `{"11": [2], "12": [0, 1]}`: the PASTA format (the paper's published files load as they are);
- `{"model_id": ..., "num_layers": ..., "num_heads": ..., "heads": {...}, "provenance": ...}`: a head
  file written by `attnsteer profile` (and the shipped default sets), which names its model;
- `{"ranking": ["11.2", "12.0", ...]}` or `["11.2", "12.0", ...]`: heads in ranked order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from attnsteer.errors import HeadConfigError
from attnsteer.heads.head_config import HeadConfig


@dataclass(frozen=True)
class HeadFile:
    """What a head file holds.

    heads: the head set. ranking: the heads as "L.H" in the file's order (ranked for a ranking file,
    layer order of the file for a mapping). model_id / num_layers / num_heads: the model it was
    profiled for (None for a plain PASTA file). provenance: how it was made, when recorded.
    """

    heads: HeadConfig
    ranking: tuple[str, ...]
    model_id: str | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    provenance: str | None = None

    @property
    def names_model(self) -> bool:
        """True when the file says which model (identity and shape) its indices belong to."""
        return self.model_id is not None


def read_head_file(path: str | Path) -> HeadFile:
    """Read and check a head file; errors name the file and what is allowed."""
    path = Path(path)
    if not path.is_file():
        raise HeadConfigError(f"head config file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise HeadConfigError(f"head config file {str(path)!r} cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise HeadConfigError(f"head config file {str(path)!r} is not valid JSON: {error}") from None
    return parse_head_file(data, repr(str(path)))


def parse_head_file(data: object, where: str) -> HeadFile:
    """A head file's decoded JSON -> HeadFile; `where` names it in errors."""
    if isinstance(data, dict) and isinstance(data.get("ranking"), list):
        data = data["ranking"]
    if isinstance(data, list):
        ranking = tuple(str(item).strip() for item in data)
        return HeadFile(HeadConfig.parse(list(ranking)), ranking)
    if not isinstance(data, dict):
        raise HeadConfigError(f"head config file {where} must hold a JSON object {{layer: [heads]}}")
    mapping = data.get("heads") if isinstance(data.get("heads"), dict) else data
    heads = HeadConfig.from_dict(mapping)
    ranking = tuple(f"{int(layer)}.{int(head)}" for layer, layer_heads in mapping.items() for head in layer_heads)
    if mapping is data:
        return HeadFile(heads, ranking)
    return HeadFile(heads, ranking, _optional(data, "model_id", str, where), _optional(data, "num_layers", int, where),
                    _optional(data, "num_heads", int, where), _optional(data, "provenance", str, where))


def _optional(data: dict, key: str, kind: type, where: str) -> object:
    value = data.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise HeadConfigError(f"head config file {where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value
