"""The NeuralGS representation: kept positions plus one tiny MLP per cluster (paper §3.4, Fig. 4).

Each cluster's MLP maps a normalised position (positional encoding, L frequencies: 3 + 6L inputs)
to the cluster's normalised attributes through ``layers`` linear layers (ReLU between them) and a
final tanh, so outputs lie in [-1, 1] like the targets (min/max normalisation, §3.4).

Attribute vector per Gaussian (D = 10 + 3M, M = higher SH coefficients per channel), raw form:
``[opacity_logit (1), log_scales (3), quat_xyz (3), sh_dc (3), sh_rest (3M, coefficient-major)]``.
Quaternions are normalised and canonicalised to w >= 0, so x, y, z determine them
(w = sqrt(max(0, 1 - x^2 - y^2 - z^2))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from core.scene import SH_REST_COUNTS, GaussianScene

ATTR_SLICES = {"opacity": slice(0, 1), "log_scales": slice(1, 4), "quat_xyz": slice(4, 7), "sh_dc": slice(7, 10)}


def attribute_dim(sh_degree: int) -> int:
    """D, the per-Gaussian attribute vector length for an SH degree."""
    return 10 + 3 * SH_REST_COUNTS[sh_degree]


def canonical_quats(quats: torch.Tensor) -> torch.Tensor:
    """Unit quaternions [N, 4] (w, x, y, z) with w >= 0 (q and -q are the same rotation)."""
    q = torch.nn.functional.normalize(quats, dim=-1)
    return torch.where(q[:, :1] < 0, -q, q)


def scene_to_attributes(scene: GaussianScene) -> torch.Tensor:
    """Raw attribute vectors [N, D] of a scene (layout in the module docstring)."""
    q = canonical_quats(scene.quats)
    rest = scene.sh_rest.reshape(scene.num_gaussians, -1)
    return torch.cat([scene.opacity_logits[:, None], scene.log_scales, q[:, 1:], scene.sh_dc, rest], dim=1)


def attributes_to_scene(means: torch.Tensor, attrs: torch.Tensor, sh_degree: int) -> GaussianScene:
    """Inverse of :func:`scene_to_attributes` given positions [N, 3] and attributes [N, D]."""
    xyz = attrs[:, 4:7]
    # w = sqrt(max(0, 1 - |xyz|^2)). sqrt(clamp_min(d, 0)) is the same forward, but its gradient is
    # infinite at d = 0 exactly, which tanh outputs reach when they saturate to 1.0 in float32 (|x| > 9):
    # one such Gaussian turned a whole MLP's weights non-finite during fine-tuning (guitar, 10 clusters).
    # The inner where keeps sqrt away from d <= 0, so the gradient there is 0.
    d = 1.0 - (xyz * xyz).sum(-1, keepdim=True)
    inside = d > 0
    w = torch.where(inside, torch.sqrt(torch.where(inside, d, torch.ones_like(d))), torch.zeros_like(d))
    m = SH_REST_COUNTS[sh_degree]
    return GaussianScene(
        means=means,
        quats=torch.cat([w, xyz], dim=1),
        log_scales=attrs[:, 1:4],
        opacity_logits=attrs[:, 0],
        sh_dc=attrs[:, 7:10],
        sh_rest=attrs[:, 10:].reshape(attrs.shape[0], m, 3),
    )


def positional_encoding(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """NeRF positional encoding of x [N, 3] in [-1, 1]: [x, sin(2^k pi x), cos(2^k pi x)], k < L -> [N, 3 + 6L]."""
    if n_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)) * math.pi
    xb = x[:, None, :] * freqs[:, None]  # [N, L, 3]
    return torch.cat([x, torch.sin(xb).flatten(1), torch.cos(xb).flatten(1)], dim=1)


@dataclass(frozen=True)
class FieldArch:
    """Architecture shared by every cluster's MLP."""

    sh_degree: int
    hidden: int = 128
    layers: int = 5
    pe_freqs: int = 10

    @property
    def in_dim(self) -> int:
        return 3 + 6 * self.pe_freqs

    @property
    def out_dim(self) -> int:
        return attribute_dim(self.sh_degree)

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of each linear layer."""
        dims = [self.in_dim] + [self.hidden] * (self.layers - 1) + [self.out_dim]
        return [(dims[i + 1], dims[i]) for i in range(self.layers)]

    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.layer_shapes())


def width_within_budget(arch: FieldArch, n_mlps: int, max_params: float, min_width: int = 8) -> int:
    """The largest hidden width <= ``arch.hidden`` whose ``n_mlps`` MLPs hold at most ``max_params``
    parameters in all (``min_width`` when even that is over budget).

    Why: a fixed width over-spends on small scenes (K 8 width-64 MLPs of an SH-3 scene hold 161k
    parameters: 30 per Gaussian for a 5k-Gaussian scene, more than its raw 59 floats half the time).
    """
    width = arch.hidden
    while width > min_width and n_mlps * replace(arch, hidden=width).n_params() > max_params:
        width -= 1
    return width


class ClusterField(nn.Module):
    """One cluster's tiny MLP: PE(position) -> tanh(normalised attributes)."""

    def __init__(self, arch: FieldArch) -> None:
        super().__init__()
        self.arch = arch
        self.linears = nn.ModuleList(nn.Linear(i, o) for o, i in arch.layer_shapes())

    def forward(self, pos_norm: torch.Tensor) -> torch.Tensor:
        """pos_norm [N, 3] in [-1, 1] -> normalised attributes [N, D] in (-1, 1)."""
        h = positional_encoding(pos_norm, self.arch.pe_freqs)
        for i, lin in enumerate(self.linears):
            h = lin(h)
            h = torch.relu(h) if i < len(self.linears) - 1 else torch.tanh(h)
        return h


class ConstantField(nn.Module):
    """A cluster's constant predictor (.ngs v2): the same normalised attributes [D] for every Gaussian.

    Used where an MLP does not pay for its own bytes; ``value`` is a buffer, not a trained parameter.
    """

    def __init__(self, arch: FieldArch, value: torch.Tensor) -> None:
        super().__init__()
        self.arch = arch
        self.register_buffer("value", value.detach().reshape(arch.out_dim).to(torch.float32).clone())

    def forward(self, pos_norm: torch.Tensor) -> torch.Tensor:
        """pos_norm [N, 3] -> ``value`` repeated, [N, D]."""
        return self.value.to(pos_norm.dtype).expand(pos_norm.shape[0], -1)


DECODE_CHUNK_FLOATS = 1 << 23
"""Decoding without autograd runs the MLPs over at most this many activations at a time (32 MiB of float32)."""


@dataclass
class NeuralGSModel:
    """A compressed scene: positions grouped by cluster (largest cluster first) plus per-cluster MLPs.

    positions [N, 3] float32 world coordinates; cluster_sizes [K] (sum N, non-increasing);
    pos_lo/pos_hi [3]: the box that normalises positions to [-1, 1] (and quantises them in .ngs);
    attr_lo/attr_hi [D]: per-dimension ranges mapping attributes to [-1, 1].
    fields: per cluster a ClusterField (MLP) or, in .ngs v2, a ConstantField.
    residual: None, or [N, D] decoded residuals in the normalised attribute space (.ngs v2), added to
    the predictors' output: attributes = denormalise(prediction + residual).
    """

    arch: FieldArch
    positions: torch.Tensor
    cluster_sizes: list[int]
    fields: list[ClusterField]
    pos_lo: torch.Tensor
    pos_hi: torch.Tensor
    attr_lo: torch.Tensor
    attr_hi: torch.Tensor
    meta: dict = field(default_factory=dict)
    residual: torch.Tensor | None = None

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_sizes)

    @property
    def num_gaussians(self) -> int:
        return int(self.positions.shape[0])

    def cluster_offsets(self) -> list[int]:
        out = [0]
        for s in self.cluster_sizes:
            out.append(out[-1] + s)
        return out

    def cluster_ids(self) -> torch.Tensor:
        """Cluster index of every Gaussian, [N] int64."""
        sizes = torch.as_tensor(self.cluster_sizes, dtype=torch.int64)
        return torch.repeat_interleave(torch.arange(len(self.cluster_sizes)), sizes)

    def normalise_positions(self, pos: torch.Tensor) -> torch.Tensor:
        return normalise(pos, self.pos_lo, self.pos_hi)

    def predict_normalised(self, n_clusters: int | None = None) -> torch.Tensor:
        """Normalised attributes [N', D] of the first ``n_clusters`` clusters (differentiable in the MLPs)."""
        k = self.n_clusters if n_clusters is None else max(0, min(n_clusters, self.n_clusters))
        offs = self.cluster_offsets()
        pos = self.normalise_positions(self.positions[: offs[k]])
        if torch.is_grad_enabled():  # training: one pass per cluster keeps the graph simple
            outs = [self.fields[c](pos[offs[c]: offs[c + 1]]) for c in range(k)]
        else:  # decoding: chunks of Gaussians, so activations stay within DECODE_CHUNK_FLOATS whatever the width
            rows = max(1, DECODE_CHUNK_FLOATS // max(self.arch.hidden, self.arch.in_dim, 1))
            outs = [self.fields[c](pos[i: min(i + rows, offs[c + 1])])
                    for c in range(k) for i in range(offs[c], offs[c + 1], rows)]
        if not outs:
            return pos.new_zeros(0, self.arch.out_dim)
        y = torch.cat(outs, dim=0)
        if self.residual is not None:
            y = y + self.residual[: offs[k]].to(y.dtype)
        return y

    def decode(self, n_clusters: int | None = None) -> GaussianScene:
        """The Gaussians of the first ``n_clusters`` clusters (all by default) as a GaussianScene."""
        y = self.predict_normalised(n_clusters)
        attrs = denormalise(y, self.attr_lo, self.attr_hi)
        return attributes_to_scene(self.positions[: y.shape[0]], attrs, self.arch.sh_degree)


def normalise(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Map [lo, hi] to [-1, 1] per column (a zero-width column maps to -1 and back to lo)."""
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return 2.0 * (x - lo) / span - 1.0


def denormalise(y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalise`."""
    return lo + (y + 1.0) * 0.5 * (hi - lo)
