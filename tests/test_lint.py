"""The tree passes ruff's linter as configured in ``pyproject.toml`` ([tool.ruff]); and that check can fail.

The ruff used is the pinned one installed next to this Python (``scripts/setup.sh``), not whatever is on PATH.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
RUFF = Path(sys.executable).with_name("ruff")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if not RUFF.exists():
        pytest.fail(f"{RUFF} missing: run scripts/setup.sh (ruff is a test dependency)")
    # --no-cache: a test run leaves no .ruff_cache in the tree
    return subprocess.run([str(RUFF), "check", "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_tree_passes_ruff():
    proc = _ruff("--output-format", "concise", ".")
    assert proc.returncode == 0, f"ruff check . failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"


def test_ruff_with_the_projects_configuration_fails_on_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""An unused import: F401, a selected rule."""\n\nimport os\n')
    proc = _ruff("--config", str(PYPROJECT), str(bad), cwd=tmp_path)
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    assert "F401" in proc.stdout and "bad.py" in proc.stdout, proc.stdout
    bad.write_text('"""Clean."""\n\nimport os\n\nprint(os.sep)\n')
    proc = _ruff("--config", str(PYPROJECT), str(bad), cwd=tmp_path)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"
