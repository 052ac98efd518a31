"""`HeadConfig`: which attention heads to steer, in the PASTA JSON format `{layer: [heads]}`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from attnsteer.errors import HeadConfigError

HeadSpec = Union["HeadConfig", Mapping[int | str, Sequence[int]], str, Sequence[int | str], Path]


@dataclass(frozen=True)
class HeadConfig:
    """A set of (layer, head) pairs, stored as sorted `((layer, (head, ...)), ...)`.

    Build it with `HeadConfig.parse`, which accepts every form users write:
    - a mapping `{layer: [heads]}` (the PASTA JSON format; keys may be strings),
    - `"all"` (every head of every layer; needs the model's shape),
    - layer numbers `[12, 13]` or `"12,13"` (every head of those layers),
    - `"L.H"` strings, `["11.2", "12.0"]` or `"11.2,12.0"` (mixable with whole layers: `"12,11.2"`),
    - a path to a JSON file in the PASTA format.
    """

    layers: tuple[tuple[int, tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        for layer, heads in self.layers:
            if not heads:
                raise HeadConfigError(f"layer {layer} lists no heads; drop the layer or name its heads")
            for index in (layer, *heads):
                if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                    raise HeadConfigError(f"layer and head indices must be integers >= 0, got {index!r}")

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, int]]) -> HeadConfig:
        """From (layer, head) pairs, in any order, duplicates allowed."""
        grouped: dict[int, set[int]] = {}
        for layer, head in pairs:
            grouped.setdefault(int(layer), set()).add(int(head))
        return cls(tuple((layer, tuple(sorted(grouped[layer]))) for layer in sorted(grouped)))

    @classmethod
    def from_dict(cls, mapping: Mapping[int | str, Sequence[int]]) -> HeadConfig:
        """From the PASTA format `{layer: [heads]}` (layer keys may be strings, as in JSON)."""
        pairs = []
        for key, heads in mapping.items():
            layer = _parse_index(key, "layer")
            if isinstance(heads, (str, bytes)) or not isinstance(heads, Sequence):
                raise HeadConfigError(f"layer {key!r} must map to a list of head indices, got {heads!r}")
            if not heads:
                raise HeadConfigError(f"layer {key!r} lists no heads; drop the layer or name its heads")
            pairs += [(layer, _parse_index(head, f"head of layer {key}")) for head in heads]
        return cls.from_pairs(pairs)

    @classmethod
    def all_heads(cls, num_layers: int, num_heads: int) -> HeadConfig:
        """Every head of every layer of a model with this shape."""
        return cls.from_pairs((layer, head) for layer in range(num_layers) for head in range(num_heads))

    @classmethod
    def parse(cls, spec: HeadSpec, num_layers: int | None = None, num_heads: int | None = None) -> HeadConfig:
        """Read any accepted form (see the class docstring); validate if the model shape is given."""
        config = cls._parse_unvalidated(spec, num_layers, num_heads)
        if num_layers is not None and num_heads is not None:
            config.validate(num_layers, num_heads)
        return config

    @classmethod
    def _parse_unvalidated(cls, spec: HeadSpec, num_layers: int | None, num_heads: int | None) -> HeadConfig:
        if isinstance(spec, HeadConfig):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        if isinstance(spec, Path) or (isinstance(spec, str) and spec.endswith(".json")):
            return cls.load(spec)
        if isinstance(spec, str):
            if spec.strip() == "all":
                if num_layers is None or num_heads is None:
                    raise HeadConfigError("'all' heads needs the model's number of layers and heads")
                return cls.all_heads(num_layers, num_heads)
            spec = [item for item in spec.split(",") if item.strip()]
        if isinstance(spec, Sequence) and spec:
            return cls.from_pairs(pair for item in spec for pair in _expand_item(item, num_heads))
        raise HeadConfigError(
            f"cannot read heads from {spec!r}; give 'all', a JSON file, {{layer: [heads]}}, "
            "layer numbers like '12,13', or 'L.H' pairs like '11.2,12.0'"
        )

    # ----- use -----------------------------------------------------------------------------------
    def as_dict(self) -> dict[int, list[int]]:
        """`{layer: [heads]}` with int keys."""
        return {layer: list(heads) for layer, heads in self.layers}

    def heads_in(self, layer: int) -> tuple[int, ...]:
        """The steered heads of `layer` (empty when it steers none)."""
        return dict(self.layers).get(layer, ())

    @property
    def num_heads_steered(self) -> int:
        """How many (layer, head) pairs the set holds."""
        return sum(len(heads) for _, heads in self.layers)

    def validate(self, num_layers: int, num_heads: int) -> None:
        """Raise HeadConfigError if a layer or head is outside the model."""
        for layer, heads in self.layers:
            if layer >= num_layers:
                raise HeadConfigError(f"layer {layer} is out of range: the model has layers 0..{num_layers - 1}")
            bad = [head for head in heads if head >= num_heads]
            if bad:
                raise HeadConfigError(
                    f"head {bad[0]} of layer {layer} is out of range: the model has heads 0..{num_heads - 1}"
                )

    def to_json(self) -> str:
        """The PASTA JSON format `{"layer": [heads]}`."""
        return json.dumps({str(layer): list(heads) for layer, heads in self.layers})

    def save(self, path: str | Path) -> None:
        """Write `to_json()` to `path` (a PASTA head file)."""
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> HeadConfig:
        """The head set of a head file (any form `head_file.read_head_file` reads)."""
        from attnsteer.heads.head_file import read_head_file

        return read_head_file(path).heads

    def __str__(self) -> str:
        return ",".join(f"{layer}.{head}" for layer, heads in self.layers for head in heads)


def _parse_index(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise HeadConfigError(f"{what} must be an integer >= 0, got {value!r}")
    try:
        index = int(str(value).strip())
    except ValueError:
        raise HeadConfigError(f"{what} must be an integer >= 0, got {value!r}") from None
    if index < 0:
        raise HeadConfigError(f"{what} must be an integer >= 0, got {value!r}")
    return index


def _expand_item(item: int | str, num_heads: int | None) -> list[tuple[int, int]]:
    """`12` or `"12"` -> every head of layer 12; `"11.2"` -> layer 11, head 2."""
    text = str(item).strip()
    if "." in text:
        layer_text, _, head_text = text.partition(".")
        return [(_parse_index(layer_text, f"layer in {text!r}"), _parse_index(head_text, f"head in {text!r}"))]
    layer = _parse_index(text, "layer")
    if num_heads is None:
        raise HeadConfigError(f"a whole layer ({text!r}) needs the model's number of heads")
    return [(layer, head) for head in range(num_heads)]
