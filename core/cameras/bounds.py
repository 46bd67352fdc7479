"""Robust scene bounds: per-axis trimmed percentiles of the Gaussian centres.

Real captures carry far-away floaters (and sky Gaussians) that make min/max bounds useless for
framing a view; the 2nd..98th percentile per axis is what the scene "is".
"""

from __future__ import annotations

import numpy as np

_MAX_SAMPLES = 2_000_000
"""Above this many points a deterministic strided subsample is used (percentiles barely move)."""


def _as_numpy(means) -> np.ndarray:
    if hasattr(means, "detach"):  # torch.Tensor, without importing torch here
        means = means.detach().to("cpu").double().numpy()
    arr = np.asarray(means, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"means must have shape [N, 3], got {arr.shape}")
    return arr


def robust_bounds(means, lower_pct: float = 2.0, upper_pct: float = 98.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis ``lower_pct`` and ``upper_pct`` percentiles of ``means``.

    ``means``: [N, 3] world positions, numpy array or torch tensor (any device/dtype). Rows with
    NaN or Inf are ignored. Returns ``(lo, hi)``, each a float64 numpy array [3], lo <= hi, in
    world units. Raises ValueError when no finite point is left or the percentiles are invalid.
    """
    if not 0.0 <= lower_pct <= upper_pct <= 100.0:
        raise ValueError(f"need 0 <= lower_pct <= upper_pct <= 100, got {lower_pct}, {upper_pct}")
    arr = _as_numpy(means)
    arr = arr[np.isfinite(arr).all(axis=1)]
    if arr.shape[0] == 0:
        raise ValueError("robust_bounds needs at least one finite point")
    if arr.shape[0] > _MAX_SAMPLES:
        arr = arr[:: -(-arr.shape[0] // _MAX_SAMPLES)]
    lo, hi = np.percentile(arr, [lower_pct, upper_pct], axis=0)
    return lo.astype(np.float64), hi.astype(np.float64)
