"""PlayCanvas splat-transform as an independent reference decoder for tests: a thin wrapper over
:mod:`core.splat_transform` (which installs the pinned version on first use; ``NEURALGS_SKIP_NPM=1``
skips the tests that need it without trying npm)."""

from __future__ import annotations

from pathlib import Path

from core.splat_transform import (
    CACHE_DIR,
    PACKAGE,
    REPO_ROOT,
    SPLAT_TRANSFORM_VERSION,
    SplatTransformUnavailable,
    ensure_splat_transform,
    run_splat_transform,
)

# re-exported for the tests, with this module's own wrapper
__all__ = ["CACHE_DIR", "PACKAGE", "REPO_ROOT", "SPLAT_TRANSFORM_VERSION", "SplatTransformUnavailable",
           "ensure_splat_transform", "run_splat_transform", "splat_transform"]


def splat_transform(cli: Path, src: Path, dst: Path, *args: str, timeout_s: float = 120) -> None:
    """Run ``splat-transform [args] src dst`` (overwriting dst); raises RuntimeError on failure."""
    run_splat_transform(cli, src, dst, *args, timeout_s=timeout_s)
