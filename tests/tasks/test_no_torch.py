"""tasks/ must stay free of torch and transformers (task data and metrics need no model)."""

from __future__ import annotations

from pathlib import Path

import attnsteer.tasks
from tests.import_check import heavy_imports_in, heavy_modules_after

TASKS_DIR = Path(attnsteer.tasks.__file__).parent


def test_import_attnsteer_tasks_does_not_load_torch():
    assert heavy_modules_after("import sys, attnsteer.tasks\nattnsteer.tasks.get_task('biasbios')()") == []


def test_no_module_imports_heavy_packages():
    assert len(list(TASKS_DIR.glob("*.py"))) >= 8
    assert heavy_imports_in(TASKS_DIR) == []
