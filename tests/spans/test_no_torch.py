"""spans/ must stay free of torch and transformers (it runs before any model is loaded)."""

from __future__ import annotations

from pathlib import Path

import attnsteer.spans
from tests.import_check import heavy_imports_in, heavy_modules_after

SPANS_DIR = Path(attnsteer.spans.__file__).parent


def test_import_attnsteer_spans_does_not_load_torch() -> None:
    assert heavy_modules_after("import sys, attnsteer.spans") == []


def test_no_module_imports_heavy_packages() -> None:
    assert len(list(SPANS_DIR.glob("*.py"))) >= 6
    assert heavy_imports_in(SPANS_DIR) == []
