"""Lazy package exports: `import attnsteer.steering` (or any package using this) costs nothing until a
name is used, so the CLI can check its arguments before torch and transformers are imported.

A package lists `{public name: defining module}` once and sets `__getattr__ = lazy_exports(...)`; its
`if TYPE_CHECKING:` block repeats the imports for type checkers and the API reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` importing `exports[name]` on first use of `name` (PEP 562)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)

    return __getattr__
