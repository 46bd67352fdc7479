"""gsplat backend: ``gsplat.rasterization`` on CUDA, used only when ``torch.cuda.is_available()``.

gsplat compiles its CUDA code on first use, which can fail (no toolkit, no GPU, wrong arch):
the first call is guarded, and a failure disables this backend for the process with the reason
logged; callers then fall back to the CPU backend.
"""

from __future__ import annotations

import logging

import torch

from core.camera import Camera
from core.raster.conventions import EPS2D, NEAR_PLANE
from core.render.output import RenderOutput
from core.scene import GaussianScene

log = logging.getLogger(__name__)

_state: dict = {"ok": None, "reason": ""}


def available() -> bool:
    """True when CUDA is present and gsplat has not failed in this process."""
    if not torch.cuda.is_available():
        _state["reason"] = "CUDA is not available (torch.cuda.is_available() is False)"
        return False
    if _state["ok"] is False:
        return False
    try:
        import gsplat  # noqa: F401 - importing it is the check
    except Exception as exc:  # noqa: BLE001 - any failure means no gsplat  # pragma: no cover - depends on the machine
        _state.update(ok=False, reason=f"import gsplat failed: {exc}")
        return False
    return True


def unavailable_reason() -> str:
    return _state["reason"] or "unknown"


def _rasterize(scene: GaussianScene, camera: Camera, colors: torch.Tensor, sh_degree: int | None, **kwargs):
    """gsplat.rasterization for one camera, or None when gsplat cannot run (first failure is logged)."""
    if not available():
        return None
    try:
        from gsplat import rasterization

        dev = torch.device("cuda")
        s = scene.to(dev)
        viewmat = torch.as_tensor(camera.world_to_camera, dtype=torch.float32, device=dev)[None]
        ks = torch.as_tensor(camera.intrinsics, dtype=torch.float32, device=dev)[None]
        result = rasterization(
            s.means, s.quats, torch.exp(s.log_scales), torch.sigmoid(s.opacity_logits), colors.to(dev),
            viewmat, ks, camera.width, camera.height, sh_degree=sh_degree,
            packed=False, rasterize_mode="classic", eps2d=EPS2D, near_plane=NEAR_PLANE, **kwargs,
        )
        _state["ok"] = True
        return result
    except Exception as exc:
        if _state["ok"] is None:
            _state.update(ok=False, reason=f"{type(exc).__name__}: {exc}")
            log.warning("gsplat backend disabled, falling back to the CPU renderer: %s", _state["reason"])
            return None
        raise


def render(scene: GaussianScene, camera: Camera, background, sh_degree: int | None, with_depth: bool):
    """RenderOutput via gsplat, or None if gsplat cannot run here (reason logged once)."""
    degree = scene.sh_degree if sh_degree is None else min(sh_degree, scene.sh_degree)
    bg = torch.as_tensor(background, dtype=torch.float32).reshape(1, 3).cuda() if torch.cuda.is_available() else None
    result = _rasterize(scene, camera, scene.sh_coeffs(), degree,
                        render_mode="RGB+ED" if with_depth else "RGB", backgrounds=bg)
    if result is None:
        return None
    colors, alphas, meta = result
    out = colors[0]
    alpha = alphas[0, ..., 0]
    depth = out[..., 3] if with_depth else torch.zeros_like(alpha)
    dev_in = scene.device
    return RenderOutput(out[..., :3].to(dev_in), alpha.to(dev_in), depth.to(dev_in), "gsplat",
                        int((meta["radii"] > 0).any(-1).sum()))


def render_features(scene: GaussianScene, camera: Camera, feats: torch.Tensor):
    """Blend arbitrary per-Gaussian features [N, C] (no SH): [H, W, C], or None if gsplat cannot run."""
    result = _rasterize(scene, camera, feats, None)
    return None if result is None else result[0][0]
