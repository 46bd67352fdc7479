"""Fixtures shared by tests/core's modules (pytest finds them here; a module asks for one by name or with
``pytestmark = pytest.mark.usefixtures(...)``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def single_thread():
    """One torch and one numba thread (see core.pipeline.compress.limited_threads: on a shared 2-core
    machine that is several times faster for tiny tensors). Used by every pipeline test module."""
    from core.pipeline.compress import limited_threads

    with limited_threads(1):
        yield


@pytest.fixture(scope="session")
def splat_transform_cli():
    """PlayCanvas splat-transform's CLI (installed from npm into the cache on first use), the independent
    implementation the format readers are checked against; skips the test when it cannot be had."""
    from core.splat_transform import SplatTransformUnavailable, ensure_splat_transform

    try:
        return ensure_splat_transform()
    except SplatTransformUnavailable as exc:
        pytest.skip(f"splat-transform reference unavailable: {exc}")
