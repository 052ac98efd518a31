"""The pure packages stay free of torch and transformers: spans, tasks and heads run before any model loads
(the CLI checks its input with them), and chat rendering needs only a tokenizer."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import pytest

from tests.import_check import heavy_imports_in, heavy_modules_after

# package -> (code run after importing it, the least number of modules it has)
PURE_PACKAGES = {
    "attnsteer.spans": ("", 6),
    "attnsteer.tasks": ("attnsteer.tasks.get_task('biasbios')()", 8),
    "attnsteer.heads": ("", 4),
}


@pytest.mark.parametrize("name", [*PURE_PACKAGES, "attnsteer.chat"])
def test_importing_does_not_load_torch(name):
    code = PURE_PACKAGES.get(name, ("", 0))[0]
    assert heavy_modules_after(f"import sys, {name}\n{code}") == []


@pytest.mark.parametrize("name", PURE_PACKAGES)
def test_no_module_imports_heavy_packages(name):
    folder = Path(import_module(name).__file__).parent
    assert len(list(folder.glob("*.py"))) >= PURE_PACKAGES[name][1]
    assert heavy_imports_in(folder) == []
