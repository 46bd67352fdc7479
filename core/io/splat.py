"""antimatter15 ``.splat`` reader (the format of github.com/antimatter15/splat).

No header; 32 bytes per splat, little endian:

- bytes 0-11   position x y z, float32
- bytes 12-23  scale x y z, float32, *linear* (the scene stores log scales)
- bytes 24-27  r g b a, uint8: ``r = 255 * (0.5 + SH_C0 * f_dc_0)``, ``a = 255 * opacity``
- bytes 28-31  rotation w x y z, uint8: ``q * 128 + 128`` of the unit quaternion

Decoding: ``f_dc = (c / 255 - 0.5) / SH_C0``; opacity logit of ``a / 255`` clamped to
``[1e-6, 1 - 1e-6]`` (as splat-transform's ``read-splat.ts`` does, so a = 0 or 255 stays finite);
``quat = (b - 128) / 128`` (antimatter15's viewer), an all-zero quaternion becomes identity.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from core.errors import InputFileError
from core.scene import SH_C0, GaussianScene

logger = logging.getLogger(__name__)

OPACITY_EPS = 1e-6
SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert SPLAT_DTYPE.itemsize == 32


def read_splat(data: bytes, path: str | os.PathLike[str]) -> tuple[GaussianScene, str, list[str]]:
    """Read an antimatter15 ``.splat`` file's bytes; returns ``(scene, "", warnings)``.

    Scene tensors: means [N, 3], log_scales [N, 3] = log(scale), quats [N, 4] (w, x, y, z),
    opacity_logits [N], sh_dc [N, 3], sh_rest [N, 0, 3] (the format has no higher SH).
    """
    if not data:
        raise InputFileError(path, "file is empty (0 bytes)")
    if len(data) % SPLAT_DTYPE.itemsize:
        raise InputFileError(
            path,
            f".splat file size {len(data)} is not a multiple of 32 bytes (one record per splat): "
            f"truncated or not a .splat file",
        )
    rec = np.frombuffer(data, dtype=SPLAT_DTYPE)
    pos = rec["position"].astype(np.float32)
    scale = rec["scale"].astype(np.float64)
    bad = {name: int((~np.isfinite(v)).any(axis=1).sum()) for name, v in (("position", pos), ("scale", scale))}
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        counts = ", ".join(f"{k} ({v} splats)" for k, v in bad.items())
        raise InputFileError(path, f"non-finite (NaN/Inf) values in {counts}")
    nonpos = int((scale <= 0).any(axis=1).sum())
    if nonpos:
        raise InputFileError(path, f"{nonpos} splats have a zero or negative scale (a .splat stores linear scales)")

    rgba = rec["rgba"].astype(np.float64) / 255.0
    dc = (rgba[:, :3] - 0.5) / SH_C0
    alpha = np.clip(rgba[:, 3], OPACITY_EPS, 1.0 - OPACITY_EPS)
    logit = np.log(alpha / (1.0 - alpha))
    quat = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    zero = ~quat.any(axis=1)
    quat[zero] = (1.0, 0.0, 0.0, 0.0)
    warnings = [f"{int(zero.sum())} splats had an all-zero rotation; set to identity"] if zero.any() else []

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    scene = GaussianScene(
        means=t(pos),
        quats=t(quat),
        log_scales=t(np.log(scale)),
        opacity_logits=t(logit),
        sh_dc=t(dc),
        sh_rest=torch.zeros(len(rec), 0, 3),
    )
    return scene, "", warnings  # no PLY-style encoding: always little-endian binary records
