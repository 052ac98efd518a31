"""The steering methods the CLI tests run each command with: a method, its parameters as `Steerer` takes them,
and the same parameters as command-line options."""

from __future__ import annotations

from typing import Any

# Parameter values that change the tiny models' greedy text (each case checks that it does).
STEERING_CASES: list[tuple[str, dict[str, Any]]] = [
    ("pasta", {"heads": "0.1,2", "alpha": 0.05}),
    ("instaboost", {"boost": 8.0}),
    ("spotlight", {"target": 0.6, "granularity": "head"}),
]


def steering_args(method: str | None, parameters: dict[str, Any]) -> list[str]:
    """`--steering METHOD --name value ...` for the command line (method None: the parameters only)."""
    options = [item for key, value in parameters.items() for item in (f"--{key}", str(value))]
    return options if method is None else ["--steering", method, *options]


def squeezed(text: str) -> str:
    """`text` without white space: a caption that a table wrapped over lines compares with the one-line text."""
    return "".join(text.split())
