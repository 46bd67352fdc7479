"""Encode and decode ``.ngs`` version 2 (layout: :mod:`core.codec.ngs_format_v2`; DESIGN.md §7).

:func:`encode_v2` turns a fitted :class:`~core.neural_field.NeuralGSModel` plus the true attributes it
approximates into the file's chunks and, at the same time, into the model a decoder will rebuild
(quantised positions, dequantised predictors, dequantised residuals), so the pipeline evaluates exactly
what it stores. Per cluster it chooses the predictor, the MLP or a constant, by measured bytes: the
one whose predictor plus residual bytes are fewer (with no residual coded, the MLP).

:func:`decode_v2` is the reader's half, used by :func:`core.codec.ngs.read_ngs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.codec.entropy import EntropyError
from core.codec.model_limits import check_model, np32
from core.codec.ngs_format import (
    ByteSource,
    FileSource,
    NgsFormatError,
    assemble,
    dequantise_positions,
    f32_list,
    quantise_positions,
    read_section,
)
from core.codec.ngs_format_v2 import (
    GROUP_NAMES,
    MAX_GAUSSIANS_PER_POSITION_BYTE,
    MIN_POSITION_BITS,
    VERSION2,
    WEIGHT_BITS,
    NgsHeaderV2,
    steps_per_dim,
)
from core.codec.positions import decode_position_groups, encode_position_groups, morton_order
from core.codec.residuals import decode_residuals, encode_residuals
from core.codec.weights import decode_mlp, encode_mlp
from core.neural_field import ClusterField, ConstantField, FieldArch, NeuralGSModel

log = logging.getLogger(__name__)

DEFAULT_LEVEL_STEPS = (1.0, 1.5, 2.25, 3.375)
DEFAULT_LEVEL_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class CodecSettings:
    """What the v2 encoder does with a fitted model.

    steps: residual step Δ per attribute group (normalised units; None = not coded, the MLP alone
    decides it; all None = the paper's pure NeuralGS). level_steps: s_l per importance level
    (level 0 = the most important Gaussians); level_fractions: the importance-rank fractions where
    the levels change (len(level_steps) - 1 values in (0, 1), increasing). predictor: "auto" (per
    cluster, whichever of MLP and constant costs fewer bytes), "mlp" or "constant".
    """

    steps: dict = field(default_factory=lambda: {g: None for g in GROUP_NAMES})
    level_steps: tuple[float, ...] = (1.0,)
    level_fractions: tuple[float, ...] = ()
    predictor: str = "auto"
    position_bits: int = 16

    def __post_init__(self) -> None:
        if not MIN_POSITION_BITS <= self.position_bits <= 16:
            raise ValueError(f"position_bits must be {MIN_POSITION_BITS}..16, got {self.position_bits}")
        unknown = set(self.steps) - set(GROUP_NAMES)
        if unknown:
            raise ValueError(f"unknown attribute group(s) {sorted(unknown)}; groups are {', '.join(GROUP_NAMES)}")
        for g, v in self.steps.items():
            if v is not None and not (np.isfinite(v) and 0 < v < 1e6):
                raise ValueError(f"step of group {g} must be None or a positive finite number, got {v!r}")
        if len(self.level_fractions) != len(self.level_steps) - 1:
            raise ValueError("level_fractions must have one value fewer than level_steps")
        if any(not 1.0 <= s <= 1e6 for s in self.level_steps):
            raise ValueError(f"level_steps must lie in 1..1e6, got {self.level_steps}")
        if list(self.level_fractions) != sorted(self.level_fractions) or any(
                not 0 < f < 1 for f in self.level_fractions):
            raise ValueError(f"level_fractions must increase within (0, 1), got {self.level_fractions}")
        if self.predictor not in ("auto", "mlp", "constant"):
            raise ValueError(f"predictor must be auto, mlp or constant, got {self.predictor!r}")

    @property
    def coded(self) -> bool:
        return any(v is not None for v in self.steps.values())

    def to_dict(self) -> dict:
        return {"steps": dict(self.steps), "level_steps": list(self.level_steps), "position_bits": self.position_bits,
                "level_fractions": list(self.level_fractions), "predictor": self.predictor}


@dataclass
class EncodedV2:
    """chunks: the file (``assemble(header, payloads)``); model: what a decoder rebuilds (Gaussians in file
    order); order [N]: the source model's index of each Gaussian in file order; clusters: per cluster
    {"predictor", "bytes": {positions, predictor, residuals}, "alternative": bytes the other predictor would
    have cost (or None)}; header: the header the file holds, without its ``sections`` list (which assemble
    derives from the payloads); payloads: (section name, payload) of each section, in file order."""

    chunks: list[bytes]
    model: NeuralGSModel
    order: np.ndarray
    clusters: list[dict]
    header: dict
    payloads: list[tuple[str, bytes]]

    @property
    def n_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)

    def set_meta(self, meta: dict) -> None:
        """Replace the header's free-form ``meta`` by ``meta``; the sections (and ``self.model``) stay as they are."""
        self.header = {**self.header, "meta": dict(meta)}
        self.chunks = assemble(self.header, self.payloads, version=VERSION2)

    def part_bytes(self) -> dict[str, int]:
        out = {"positions": 0, "predictor": 0, "residuals": 0}
        for c in self.clusters:
            for k in out:
                out[k] += c["bytes"][k]
        out["header"] = self.n_bytes - sum(out.values())
        return out


def importance_levels(importance: np.ndarray | None, n: int, fractions: tuple[float, ...]) -> np.ndarray:
    """Level of each Gaussian [n] (0 = most important) from the importance-rank fractions."""
    if not fractions or importance is None or n == 0:
        return np.zeros(n, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-np.asarray(importance, dtype=np.float64), kind="stable")] = np.arange(n)
    return np.searchsorted(np.asarray(fractions) * n, rank, side="right").astype(np.int64)


def _mlp_layers(f: ClusterField) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(lin.weight.detach().cpu().float().numpy(), lin.bias.detach().cpu().float().numpy()) for lin in f.linears]


def _field_from_layers(arch: FieldArch, layers: list[tuple[np.ndarray, np.ndarray]]) -> ClusterField:
    with torch.random.fork_rng(devices=[]):
        f = ClusterField(arch)
    with torch.no_grad():
        for lin, (w, b) in zip(f.linears, layers, strict=True):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    return f


def _predict(f: torch.nn.Module, pos_norm: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return f(pos_norm).float().numpy().astype(np.float64)


def encode_v2(model: NeuralGSModel, settings: CodecSettings, target: torch.Tensor | None = None,
              importance: torch.Tensor | None = None) -> EncodedV2:
    """Encode ``model`` as .ngs v2.

    target [N, D]: the true normalised attributes of the model's Gaussians (needed when residuals are
    coded or a constant predictor may be chosen); importance [N]: S_j (needed for more than one level).
    ValueError if something cannot be stored.
    """
    check_model(model, allow_v2=True)  # the same structural limits as v1
    a = model.arch
    n, k, d = model.num_gaussians, model.n_clusters, a.out_dim
    if (settings.coded or settings.predictor == "constant") and target is None:
        raise ValueError("residual coding and constant predictors need the true attributes (target)")
    if target is not None and tuple(target.shape) != (n, d):
        raise ValueError(f"target has shape {tuple(target.shape)}, expected {(n, d)}")
    lo, hi = np32(model.pos_lo), np32(model.pos_hi)
    bits = settings.position_bits
    q_all = quantise_positions(model.positions.detach().cpu().numpy(), lo, hi, bits)
    tgt = None if target is None else target.detach().cpu().double().numpy()
    imp = None if importance is None else importance.detach().cpu().double().numpy().reshape(-1)
    levels_all = importance_levels(imp, n, settings.level_fractions) if settings.coded else np.zeros(n, np.int64)
    n_levels = len(settings.level_steps) if settings.coded else 1
    level_steps = np.asarray(settings.level_steps if settings.coded else (1.0,), dtype=np.float32).astype(np.float64)
    level_counts = np.bincount(levels_all, minlength=n_levels)[:n_levels] if n else np.zeros(n_levels, np.int64)
    level_counts = np.maximum(level_counts, 1)  # every level codable
    step_d = steps_per_dim(settings.steps, a.sh_degree)
    coded = np.flatnonzero(np.isfinite(step_d))
    steps_c = step_d[coded]

    offs = model.cluster_offsets()
    order, payloads, entries, reports = [], [], [], []
    new_fields, new_res = [], []
    for c in range(k):
        idx = np.arange(offs[c], offs[c + 1])
        idx = idx[morton_order(q_all[idx])]
        order.append(idx)
        qc = q_all[idx]
        pos_block = encode_position_groups([qc])
        if len(pos_block) * MAX_GAUSSIANS_PER_POSITION_BYTE < len(idx):
            raise ValueError(f"cluster {c}: {len(idx)} positions in {len(pos_block)} bytes (mostly duplicates); "
                             f".ngs v2 needs at least one byte per {MAX_GAUSSIANS_PER_POSITION_BYTE} Gaussians")
        pos = torch.from_numpy(dequantise_positions(qc, lo, hi, bits))
        pos_norm = model.normalise_positions(pos)
        cands = []
        if settings.predictor in ("auto", "mlp") and isinstance(model.fields[c], ClusterField):
            block, deq = encode_mlp(_mlp_layers(model.fields[c]))
            f = _field_from_layers(a, deq)
            cands.append(("mlp", block, f))
        if (settings.coded and settings.predictor in ("auto", "constant")) or not cands:
            if tgt is None:
                raise ValueError(f"cluster {c} has no MLP to store and no target for a constant predictor")
            mean = tgt[idx].mean(axis=0) if len(idx) else np.zeros(d)
            v16 = np.clip(mean, -60000, 60000).astype("<f2")
            f = ConstantField(a, torch.from_numpy(v16.astype(np.float32)))
            cands.append(("constant", v16.tobytes(), f))
        best = None
        for name, pblock, f in cands:
            res_block, res = b"", np.zeros((len(idx), 0), np.float32)
            if coded.size:
                r = tgt[idx][:, coded] - _predict(f, pos_norm)[:, coded]
                res_block, res = encode_residuals(r, steps_c, levels_all[idx], level_steps, level_counts)
            total = len(pblock) + len(res_block)
            if best is None or total < best[0]:
                alt = best[0] if best is not None else None
                best = (total, name, pblock, f, res_block, res, alt)
            elif best[6] is None:
                best = best[:6] + (total,)
        _, name, pblock, f, res_block, res, alt = best
        payloads.append((f"cluster_{c}", pos_block + pblock + res_block))
        entries.append({"predictor": name, "parts": [len(pos_block), len(pblock), len(res_block)]})
        reports.append({"predictor": name, "alternative": alt,
                        "bytes": {"positions": len(pos_block), "predictor": len(pblock), "residuals": len(res_block)}})
        new_fields.append(f)
        full = np.zeros((len(idx), d), np.float32)
        full[:, coded] = res
        new_res.append(full)

    order_np = np.concatenate(order) if order else np.zeros(0, np.int64)
    header = {
        "n_gaussians": n, "n_clusters": k, "sh_degree": a.sh_degree,
        "arch": {"hidden": a.hidden, "layers": a.layers, "pe_freqs": a.pe_freqs},
        "cluster_sizes": [int(s) for s in model.cluster_sizes],
        "pos_lo": f32_list(lo), "pos_hi": f32_list(hi),
        "attr_lo": f32_list(np32(model.attr_lo)), "attr_hi": f32_list(np32(model.attr_hi)),
        "position_bits": bits,
        "codec": {"steps": {g: (None if v is None else f32_list([v])[0]) for g, v in settings.steps.items()}
                  | {g: None for g in GROUP_NAMES if g not in settings.steps},
                  "level_steps": f32_list(level_steps), "level_counts": [int(x) for x in level_counts],
                  "weight_bits": WEIGHT_BITS},
        "clusters": entries,
        "meta": dict(model.meta),
    }
    chunks = assemble(header, payloads, version=VERSION2)
    residual = torch.from_numpy(np.concatenate(new_res)) if new_res and coded.size else None
    decoded = NeuralGSModel(
        arch=a, positions=torch.from_numpy(dequantise_positions(q_all[order_np], lo, hi, bits)),
        cluster_sizes=list(model.cluster_sizes), fields=new_fields, pos_lo=torch.from_numpy(lo.copy()),
        pos_hi=torch.from_numpy(hi.copy()), attr_lo=torch.from_numpy(np32(model.attr_lo).copy()),
        attr_hi=torch.from_numpy(np32(model.attr_hi).copy()), meta=dict(model.meta), residual=residual)
    return EncodedV2(chunks, decoded, order_np, reports, header, payloads)


def decode_v2(src: ByteSource | FileSource, hdr: NgsHeaderV2, path: Path, n_clusters: int | None) -> NeuralGSModel:
    """The model of a validated v2 header's first ``n_clusters`` clusters (all when None)."""
    k = hdr.n_clusters if n_clusters is None else min(n_clusters, hdr.n_clusters)
    arch = FieldArch(sh_degree=hdr.sh_degree, hidden=hdr.hidden, layers=hdr.layers, pe_freqs=hdr.pe_freqs)
    d = arch.out_dim
    step_d = steps_per_dim(hdr.steps, hdr.sh_degree)
    coded = np.flatnonzero(np.isfinite(step_d))
    level_steps = hdr.level_steps.astype(np.float64)
    positions, fields, residuals = [], [], []
    for c in range(k):
        e, sec = hdr.clusters[c], hdr.sections[c]
        payload = bytes(read_section(src, sec, path))
        p0, p1 = e.positions_len, e.positions_len + e.predictor_len
        try:
            (qc,) = decode_position_groups(payload[:p0], [e.n])
            if qc.size and int(qc.max()) >= 2**hdr.position_bits:
                raise EntropyError(f"position beyond the {hdr.position_bits}-bit grid (damaged)")
            pos = torch.from_numpy(dequantise_positions(qc, hdr.pos_lo, hdr.pos_hi, hdr.position_bits))
            if e.predictor == "mlp":
                f = _field_from_layers(arch, decode_mlp(payload[p0:p1], arch.layer_shapes()))
            else:
                v = np.frombuffer(payload[p0:p1], dtype="<f2").astype(np.float32)
                if not np.isfinite(v).all():
                    raise EntropyError("non-finite constant predictor (float16 Inf/NaN)")
                f = ConstantField(arch, torch.from_numpy(v))
            full = np.zeros((e.n, d), np.float32)
            if coded.size:
                full[:, coded] = decode_residuals(payload[p1:], e.n, step_d[coded], level_steps, hdr.level_counts)
        except EntropyError as exc:
            raise NgsFormatError(path, f"section {sec.name}: {exc}") from None
        positions.append(pos)
        fields.append(f)
        residuals.append(torch.from_numpy(full))
    cat = lambda xs, shape: torch.cat(xs) if xs else torch.zeros(shape)
    return NeuralGSModel(
        arch=arch, positions=cat(positions, (0, 3)), cluster_sizes=list(hdr.cluster_sizes[:k]), fields=fields,
        pos_lo=torch.from_numpy(hdr.pos_lo.copy()), pos_hi=torch.from_numpy(hdr.pos_hi.copy()),
        attr_lo=torch.from_numpy(hdr.attr_lo.copy()), attr_hi=torch.from_numpy(hdr.attr_hi.copy()),
        meta=dict(hdr.meta), residual=cat(residuals, (0, d)) if coded.size else None)
