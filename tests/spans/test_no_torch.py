from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import attnsteer.spans

SPANS_DIR = Path(attnsteer.spans.__file__).parent
SRC_DIR = SPANS_DIR.parent.parent
HEAVY = ("torch", "transformers")

def heavy_modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which heavy packages it left imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")])}
    probe = code + f"\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_import_attnsteer_spans_does_not_load_torch() -> None:
    assert heavy_modules_after("import sys, attnsteer.spans") == []


def test_no_module_imports_heavy_packages() -> None:
    files = sorted(SPANS_DIR.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name}"
