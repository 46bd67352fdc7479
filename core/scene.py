"""The Gaussian scene: raw, pre-activation tensors as graphdeco 3DGS `.ply` files store them.

Shapes (N Gaussians, M = (degree+1)^2 - 1 higher-order SH coefficients: 0, 3, 8 or 15):

- ``means``          [N, 3]    world-space centres
- ``quats``          [N, 4]    rotation quaternions (w, x, y, z), not necessarily normalised
- ``log_scales``     [N, 3]    natural log of the per-axis standard deviations
- ``opacity_logits`` [N]       logit of the opacity in (0, 1)
- ``sh_dc``          [N, 3]    degree-0 SH coefficient per RGB channel
- ``sh_rest``        [N, M, 3] higher SH coefficients, coefficient-major then channel

A `.ply` stores ``f_rest`` channel-major (``f_rest_{c*M + k}`` is coefficient k of channel c);
readers and writers convert to and from the layout above.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

SH_REST_COUNTS = {0: 0, 1: 3, 2: 8, 3: 15}
"""Number of higher-order SH coefficients per channel for each SH degree."""

SH_C0 = 0.28209479177387814
"""The degree-0 real SH basis constant 1 / (2 sqrt(pi)): colour = SH_C0 * sh_dc + 0.5 (before the
higher bands). The one definition of the project; every reader, writer and renderer imports it."""

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)
"""The real SH basis constants of bands 1-3 in graphdeco's order (the renderers' ``eval_sh``)."""


class SceneValidationError(ValueError):
    """A GaussianScene was built from tensors of the wrong shape, dtype or with non-finite values."""


def sh_degree_for_rest_count(m: int) -> int:
    """SH degree whose higher-order coefficient count is ``m`` (0, 3, 8 or 15)."""
    for degree, count in SH_REST_COUNTS.items():
        if count == m:
            return degree
    raise SceneValidationError(f"{m} higher-order SH coefficients per channel matches no SH degree 0-3")


@dataclass(frozen=True)
class GaussianScene:
    """A set of 3D Gaussians in raw (pre-activation) form. Shape-checked on construction."""

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh_dc: torch.Tensor
    sh_rest: torch.Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0] if self.means.dim() == 2 else -1
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "opacity_logits": (n,),
            "sh_dc": (n, 3),
        }
        for name, shape in expected.items():
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise SceneValidationError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) != shape:
                raise SceneValidationError(f"{name} has shape {tuple(t.shape)}, expected {shape}")
        rest = self.sh_rest
        if not isinstance(rest, torch.Tensor) or rest.dim() != 3 or rest.shape[0] != n or rest.shape[2] != 3:
            shape = tuple(rest.shape) if isinstance(rest, torch.Tensor) else type(rest).__name__
            raise SceneValidationError(f"sh_rest has shape {shape}, expected ({n}, M, 3)")
        sh_degree_for_rest_count(rest.shape[1])
        devices = {t.device for t in self.tensors()}
        if len(devices) != 1:
            raise SceneValidationError(f"all tensors must be on one device, got {sorted(map(str, devices))}")
        for name, t in zip(self.field_names(), self.tensors()):
            if not t.is_floating_point():
                raise SceneValidationError(f"{name} must be a floating-point tensor, got {t.dtype}")

    # -- introspection -------------------------------------------------------------------------
    @staticmethod
    def field_names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(GaussianScene))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, name) for name in self.field_names())

    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[0])

    def __len__(self) -> int:
        return self.num_gaussians

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_rest_count(self.sh_rest.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    # -- activated attributes ------------------------------------------------------------------
    def scales(self) -> torch.Tensor:
        """Per-axis standard deviations, [N, 3]."""
        return torch.exp(self.log_scales)

    def opacities(self) -> torch.Tensor:
        """Opacities in (0, 1), [N]."""
        return torch.sigmoid(self.opacity_logits)

    def unit_quats(self) -> torch.Tensor:
        """Normalised quaternions (w, x, y, z), [N, 4]."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    def sh_coeffs(self) -> torch.Tensor:
        """All SH coefficients, DC first: [N, (degree+1)^2, 3]."""
        return torch.cat([self.sh_dc[:, None, :], self.sh_rest], dim=1)

    # -- pure operations -----------------------------------------------------------------------
    def subset(self, mask_or_index: torch.Tensor) -> "GaussianScene":
        """A new scene with the Gaussians selected by a boolean mask [N] or an index tensor."""
        return GaussianScene(*(t[mask_or_index] for t in self.tensors()))

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "GaussianScene":
        return GaussianScene(*(t.to(device=device, dtype=dtype) for t in self.tensors()))

    def detach(self) -> "GaussianScene":
        return GaussianScene(*(t.detach() for t in self.tensors()))

    def with_sh_degree(self, degree: int) -> "GaussianScene":
        """A copy truncated (or zero-padded) to SH ``degree``."""
        m = SH_REST_COUNTS[degree]
        rest = self.sh_rest[:, :m]
        if rest.shape[1] < m:
            pad = rest.new_zeros(rest.shape[0], m - rest.shape[1], 3)
            rest = torch.cat([rest, pad], dim=1)
        return GaussianScene(self.means, self.quats, self.log_scales, self.opacity_logits, self.sh_dc, rest)

    def non_finite_fields(self) -> list[str]:
        """Names of the fields holding NaN or Inf values."""
        return [name for name, t in zip(self.field_names(), self.tensors()) if not bool(torch.isfinite(t).all())]

    @staticmethod
    def concatenate(scenes: "list[GaussianScene]") -> "GaussianScene":
        if not scenes:
            raise SceneValidationError("cannot concatenate zero scenes")
        return GaussianScene(*(torch.cat(parts, dim=0) for parts in zip(*(s.tensors() for s in scenes))))
