"""The documentation's inputs: every public name carries a docstring (the API reference is built from
them by `make docs`), and the README stays a five-minute read that starts with the two commands."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_CHARS = 10_000

# The packages whose `__all__` the API reference (docs/api/) renders.
PACKAGES = [
    "attnsteer",
    "attnsteer.steering",
    "attnsteer.spans",
    "attnsteer.chat",
    "attnsteer.heads",
    "attnsteer.models",
    "attnsteer.profiling",
    "attnsteer.evaluation",
    "attnsteer.context",
    "attnsteer.tasks",
]


def own_docstring(obj: object) -> str:
    """The docstring written on `obj` itself: not one inherited from a base class (`inspect.getdoc`
    climbs the MRO, so an undocumented `ValueError` subclass would pass), nor the signature that
    `@dataclass` / `NamedTuple` put in `__doc__` when none is written."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if doc.startswith(f"{obj.__name__}("):
            return ""
        return inspect.cleandoc(doc)
    return inspect.getdoc(obj) or ""


def undocumented(package: str) -> list[str]:
    """The names in the package's `__all__` that are classes or functions without a docstring.
    Constants and type aliases (`SpanLike`, `METHODS`) cannot carry their own docstring: skipped."""
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not own_docstring(obj).strip():
            missing.append(name)
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_class_and_function_has_a_docstring(package: str) -> None:
    module = importlib.import_module(package)
    assert (module.__doc__ or "").strip(), f"{package} has no module docstring"
    assert undocumented(package) == [], f"{package}: public names without a docstring"


def test_own_docstring_ignores_inherited_and_generated_docstrings() -> None:
    from dataclasses import dataclass

    class Bare(ValueError):
        pass

    @dataclass
    class Record:
        value: int

    @dataclass
    class Documented:
        """A record."""

        value: int

    assert inspect.getdoc(Bare) and own_docstring(Bare) == ""
    assert Record.__doc__ and own_docstring(Record) == ""
    assert own_docstring(Documented) == "A record."


def test_readme_is_short_and_starts_with_make_demo_and_make_test() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(README.read_bytes()) <= README_MAX_CHARS, "README.md grew past 10,000 characters: move detail to docs/"
    before_first_section = text.split("\n## ", 1)[0]
    assert "make demo" in before_first_section
    assert "make test" in before_first_section


def test_readme_links_to_docs_pages_that_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", README.read_text(encoding="utf-8"))
    assert "docs/index.md" in links and "docs/api/index.md" in links
    assert [link for link in links if not (ROOT / link).is_file()] == []
