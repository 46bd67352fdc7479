"""PlayCanvas splat-transform (npm) as an independent reference decoder for tests.

Installed once, at a pinned version, into ``<repo>/.cache/splat-transform/<version>`` (not tracked
by git) with ``npm install --prefix``; later sessions reuse it. 2.7.1 is the newest release that
runs on Node 18/20 (3.x needs Node >= 22). Its install scripts are not run (``--ignore-scripts``):
the optional ``webgpu`` dependency is only used for SOG compression, not for PLY conversion.
Set ``NEURALGS_SKIP_NPM=1`` to skip the tests that need it without trying npm.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

SPLAT_TRANSFORM_VERSION = "2.7.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "splat-transform"
PACKAGE = "@playcanvas/splat-transform"


class SplatTransformUnavailable(RuntimeError):
    """npm/node missing, or the install failed (offline machine, registry error)."""


def _package_dir(prefix: Path) -> Path:
    return prefix / "node_modules" / "@playcanvas" / "splat-transform"


def _installed(prefix: Path) -> bool:
    try:
        meta = json.loads((_package_dir(prefix) / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == SPLAT_TRANSFORM_VERSION and (_package_dir(prefix) / "bin" / "cli.mjs").exists()


def ensure_splat_transform(timeout_s: float = 420) -> Path:
    """Path of splat-transform's ``cli.mjs``, installing it on first use.

    Raises SplatTransformUnavailable with the reason when node/npm are missing or npm fails.
    """
    if os.environ.get("NEURALGS_SKIP_NPM"):
        raise SplatTransformUnavailable("NEURALGS_SKIP_NPM is set")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise SplatTransformUnavailable("node and npm are needed to install splat-transform (not on PATH)")
    prefix = CACHE_DIR / SPLAT_TRANSFORM_VERSION
    if not _installed(prefix):
        staging = CACHE_DIR / f".install-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        cmd = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts",
               "--fetch-retries=1", "--loglevel=error", f"{PACKAGE}@{SPLAT_TRANSFORM_VERSION}"]  # fmt: skip
        logger.info("installing %s@%s into %s", PACKAGE, SPLAT_TRANSFORM_VERSION, prefix)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "npm_config_update_notifier": "false"})  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise SplatTransformUnavailable(f"npm install failed: {exc}") from exc
        if proc.returncode != 0 or not _installed(staging):
            shutil.rmtree(staging, ignore_errors=True)
            tail = (proc.stderr or proc.stdout).strip()[-600:]
            raise SplatTransformUnavailable(f"npm install {PACKAGE}@{SPLAT_TRANSFORM_VERSION} failed: {tail}")
        if not _installed(prefix):  # another process may have finished first
            shutil.rmtree(prefix, ignore_errors=True)
            try:
                staging.rename(prefix)
            except OSError:
                pass
        shutil.rmtree(staging, ignore_errors=True)
        if not _installed(prefix):
            raise SplatTransformUnavailable(f"splat-transform install did not end up in {prefix}")
    return _package_dir(prefix) / "bin" / "cli.mjs"


def splat_transform(cli: Path, src: Path, dst: Path, *args: str, timeout_s: float = 120) -> None:
    """Run ``splat-transform [args] src dst`` (overwriting dst); raises RuntimeError on failure."""
    node = shutil.which("node") or "node"
    proc = subprocess.run([node, str(cli), "-q", "-w", *args, str(src), str(dst)],
                          capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    if proc.returncode != 0 or not dst.exists():
        raise RuntimeError(f"splat-transform failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}")
