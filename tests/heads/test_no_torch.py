"""heads/ must stay free of torch and transformers: head sets are read and checked before any model loads."""

from __future__ import annotations

from pathlib import Path

import attnsteer.heads
from tests.import_check import heavy_imports_in, heavy_modules_after

HEADS_DIR = Path(attnsteer.heads.__file__).parent


def test_import_attnsteer_heads_does_not_load_torch() -> None:
    assert heavy_modules_after("import sys, attnsteer.heads") == []


def test_no_module_imports_heavy_packages() -> None:
    assert len(list(HEADS_DIR.glob("*.py"))) >= 4
    assert heavy_imports_in(HEADS_DIR) == []
