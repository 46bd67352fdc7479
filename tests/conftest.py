"""Shared pytest fixtures: where the real data lives, tiny synthetic scenes."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as main.py: idle OpenMP threads must not spin

import pytest

from core.paths import REPO_ROOT, shared_data_dir

__all__ = ["REPO_ROOT", "SHARED_DATA", "shared_path"]  # REPO_ROOT re-exported for the tests

SHARED_DATA = shared_data_dir()


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the test when that file is not present on this machine."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder not available: {SHARED_DATA}")
    return SHARED_DATA
