from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import attnsteer.tasks

TASKS_DIR = Path(attnsteer.tasks.__file__).parent
SRC_DIR = TASKS_DIR.parent.parent
HEAVY = ("torch", "transformers")


def heavy_modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which heavy packages it left imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")])}
    probe = code + f"\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_import_attnsteer_tasks_does_not_load_torch():
    assert heavy_modules_after("import sys, attnsteer.tasks\nattnsteer.tasks.get_task('biasbios')()") == []


def test_no_module_imports_heavy_packages():
    files = sorted(TASKS_DIR.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert all(name.split(".")[0] not in HEAVY for name in names), f"{path.name} imports {names}"
