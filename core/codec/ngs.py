"""Read and write NeuralGS ``.ngs`` v1 files (DESIGN.md §7): NeuralGSModel <-> bytes.

The byte layout, the header keys and the checks are documented in :mod:`core.codec.ngs_format` (the
container) and :mod:`core.codec.ngs_format_v1` (the v1 header and sections).
In short: magic, u16 version 1, u16 flags 0, u32 header length, header JSON, its CRC32, then the
``positions`` section (uint16 [N, 3] quantised in the pos_lo..pos_hi box, clusters largest
first) and one ``mlp_<k>`` section per cluster (float16 weight then bias of each layer), each
framed as u32 length + payload + u32 CRC32.

What is lossy: positions (16 bits per axis: error <= (hi - lo) / 131070 per axis) and MLP weights
(float16). :func:`quantise_model_` snaps a model in memory to exactly what a file stores, so a
pipeline can fine-tune, quantise, evaluate, and write a file that decodes to bit-identical results.

Progressive loading: ``read_ngs(path, n_clusters=n)`` decodes the first n (largest) clusters only;
``n_clusters=0`` gives an empty model (0 clusters, 0 Gaussians); n > K gives all K.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch

from core.codec.model_limits import check_model, np32
from core.codec.ngs_format import (
    POSITION_BITS,
    ByteSource,
    FileSource,
    NgsFormatError,
    assemble,
    dequantise_positions,
    f32_list,
    open_file,
    quantise_positions,
    read_section,
)
from core.codec.ngs_format_v1 import VERSION1, WEIGHT_DTYPE, NgsHeader
from core.codec.ngs_layout import read_layout
from core.codec.ngs_v2 import decode_v2
from core.io.atomic import atomic_write
from core.neural_field import ClusterField, FieldArch, NeuralGSModel
from core.scene import GaussianScene

logger = logging.getLogger(__name__)

_F16_MAX = float(np.finfo(np.float16).max)  # 65504


# -- quantisation in memory -----------------------------------------------------------------------------
def quantise_model_weights_(model: NeuralGSModel) -> NeuralGSModel:
    """Round every MLP parameter to float16 and back, in place (the values a file stores).

    Raises ValueError if a parameter is non-finite or beyond float16's range (|w| > 65504).
    Returns ``model``.
    """
    with torch.no_grad():
        for c, f in enumerate(model.fields):
            for name, p in f.named_parameters():
                h = p.to(torch.float16)
                if not bool(torch.isfinite(h).all()):
                    raise ValueError(f"cluster {c} parameter {name} has values that are non-finite or beyond "
                                     f"float16's range (|w| > {_F16_MAX:g}); it cannot be stored in .ngs v1")
                p.copy_(h.to(p.dtype))
    return model


def quantise_model_positions_(model: NeuralGSModel) -> NeuralGSModel:
    """Replace ``model.positions`` by the 16-bit grid values a file stores (a new tensor, same device/dtype).

    Raises ValueError if a position lies outside pos_lo..pos_hi by more than half a step. Returns ``model``.
    """
    lo, hi = np32(model.pos_lo), np32(model.pos_hi)
    q = quantise_positions(model.positions.detach().cpu().numpy(), lo, hi)
    deq = torch.from_numpy(dequantise_positions(q, lo, hi))
    model.positions = deq.to(device=model.positions.device, dtype=model.positions.dtype)
    return model


def quantise_model_(model: NeuralGSModel) -> NeuralGSModel:
    """Both :func:`quantise_model_weights_` and :func:`quantise_model_positions_`: after this, encode ->
    decode reproduces the model's positions, weights and ``decode()`` output bit for bit."""
    return quantise_model_positions_(quantise_model_weights_(model))


# -- encoding ---------------------------------------------------------------------------------------------
def _field_bytes(f: ClusterField, arch: FieldArch, c: int) -> bytes:
    """float16 little-endian bytes of one field: each layer's weight [out, in] then bias [out]."""
    parts = []
    for lin, (o, i) in zip(f.linears, arch.layer_shapes(), strict=True):
        if tuple(lin.weight.shape) != (o, i) or tuple(lin.bias.shape) != (o,):
            raise ValueError(f"cluster {c}: layer of shape {tuple(lin.weight.shape)}, expected {(o, i)}")
        parts += [lin.weight.detach().reshape(-1), lin.bias.detach().reshape(-1)]
    w = torch.cat(parts).cpu().to(torch.float32).numpy()
    with np.errstate(over="ignore"):
        h = w.astype("<f2")
    if not np.isfinite(h).all():
        raise ValueError(f"cluster {c}'s MLP has non-finite weights or weights beyond float16's range "
                         f"(|w| > {_F16_MAX:g})")
    return h.tobytes()


def _encode_chunks(model: NeuralGSModel) -> list[bytes]:
    check_model(model)
    a = model.arch
    lo, hi = np32(model.pos_lo), np32(model.pos_hi)
    q = quantise_positions(model.positions.detach().cpu().numpy(), lo, hi)
    payloads = [("positions", q.tobytes())]
    payloads += [(f"mlp_{c}", _field_bytes(f, a, c)) for c, f in enumerate(model.fields)]
    header = {
        "n_gaussians": model.num_gaussians,
        "n_clusters": model.n_clusters,
        "sh_degree": a.sh_degree,
        "arch": {"hidden": a.hidden, "layers": a.layers, "pe_freqs": a.pe_freqs},
        "cluster_sizes": [int(s) for s in model.cluster_sizes],
        "pos_lo": f32_list(lo),
        "pos_hi": f32_list(hi),
        "attr_lo": f32_list(np32(model.attr_lo)),
        "attr_hi": f32_list(np32(model.attr_hi)),
        "position_bits": POSITION_BITS,
        "weight_dtype": WEIGHT_DTYPE,
        "meta": dict(model.meta),
    }
    return assemble(header, payloads, version=VERSION1)


def encode_ngs(model: NeuralGSModel) -> bytes:
    """The ``.ngs`` v1 bytes of ``model``. ValueError if the model cannot be stored (see module docs)."""
    return b"".join(_encode_chunks(model))


def write_chunks(chunks: list[bytes], path: str | os.PathLike[str], *, overwrite: bool = False) -> int:
    """Write an encoded file (e.g. ``EncodedV2.chunks``) atomically; returns the number of bytes written."""
    with atomic_write(path, overwrite=overwrite) as f:
        for c in chunks:
            f.write(c)
    return sum(len(c) for c in chunks)


def write_ngs(model: NeuralGSModel, path: str | os.PathLike[str], *, overwrite: bool = False) -> int:
    """Write ``model`` to ``path`` atomically; returns the number of bytes written.

    FileExistsError if ``path`` exists and not ``overwrite``; ValueError if the model cannot be stored.
    """
    start = time.perf_counter()
    chunks = _encode_chunks(model)
    with atomic_write(path, overwrite=overwrite) as f:
        for c in chunks:
            f.write(c)
    n = sum(len(c) for c in chunks)
    logger.info("wrote %s: %d Gaussians, %d clusters, %d bytes in %.3f s",
                path, model.num_gaussians, model.n_clusters, n, time.perf_counter() - start)
    return n


# -- decoding ---------------------------------------------------------------------------------------------
def decode_ngs(data: bytes | bytearray | memoryview, *, source: str | os.PathLike[str] = "<bytes>",
               n_clusters: int | None = None) -> NeuralGSModel:
    """Decode ``.ngs`` bytes; ``source`` names them in errors. See :func:`read_ngs`."""
    return _decode(ByteSource(data), Path(source), n_clusters)


def read_ngs(path: str | os.PathLike[str], *, n_clusters: int | None = None) -> NeuralGSModel:
    """Read an ``.ngs`` file into a NeuralGSModel (CPU, float32); ``model.decode()`` gives the scene.

    With ``n_clusters`` only the first (largest) ``n_clusters`` clusters' positions and MLPs are read
    and decoded, and the model holds only those clusters (0 -> an empty model; more than K -> all).
    The whole prelude, header, positions section and the decoded MLP sections are checked (CRCs
    included), and the file size must match the header exactly; MLP sections that are not decoded
    are not read. Raises NgsFormatError (an InputFileError) for any problem with the file,
    ValueError for a negative ``n_clusters``.
    """
    p = Path(path)
    _check_n_clusters(n_clusters)
    with open_file(p) as f:
        return _decode(FileSource(f, p), p, n_clusters)


def read_ngs_scene(path: str | os.PathLike[str], *,
                   n_clusters: int | None = None) -> tuple[NeuralGSModel, GaussianScene]:
    """Read and decode an ``.ngs`` file: (model, scene). The one decode of a file every command and the app use.

    Decodes without autograd in bounded memory (the MLPs run over chunks of Gaussians) and refuses a file whose
    decoded attributes are not all finite (header ranges or weights that overflow float32): NgsFormatError.
    """
    p = Path(path)
    model = read_ngs(p, n_clusters=n_clusters)
    with torch.no_grad():
        scene = model.decode()
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest"):
        t = getattr(scene, name)
        if t.numel() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1).sum())
            raise NgsFormatError(p, f"decodes to non-finite {name} for {bad:,} Gaussians (the header's ranges or the "
                                    "MLP weights overflow): a corrupt or hand-made file")
    return model, scene


def _check_n_clusters(n_clusters: int | None) -> None:
    if n_clusters is not None and (not isinstance(n_clusters, int) or isinstance(n_clusters, bool) or n_clusters < 0):
        raise ValueError(f"n_clusters must be None or an integer >= 0, got {n_clusters!r}")


def _decode(src: ByteSource | FileSource, path: Path, n_clusters: int | None) -> NeuralGSModel:
    _check_n_clusters(n_clusters)
    start = time.perf_counter()
    try:
        hdr = read_layout(src, path)
        if hdr.version == 1:
            model = _build_model(src, hdr, path, n_clusters)
        else:
            model = decode_v2(src, hdr, path, n_clusters)
    except NgsFormatError:
        raise
    except MemoryError:
        raise NgsFormatError(path, "not enough memory to decode this file") from None
    except (ValueError, TypeError, IndexError, KeyError, ArithmeticError, struct.error, RuntimeError) as exc:
        # Safety net: every known problem is reported by name above; this keeps the API promise.
        logger.exception("unexpected error decoding %s", path)
        raise NgsFormatError(path, f"unexpected error while decoding: {exc}") from exc
    logger.info("decoded %s (v%d): %d of %d clusters, %d Gaussians, SH %d, in %.3f s", path, hdr.version,
                model.n_clusters, hdr.n_clusters, model.num_gaussians, hdr.sh_degree,
                time.perf_counter() - start)
    return model


def _field_from_flat(arch: FieldArch, flat: torch.Tensor) -> ClusterField:
    """A ClusterField whose parameters are the float32 ``flat`` [n_params] (weight then bias per layer).

    Built with ClusterField's own constructor (its random init is wasted work, ~0.3-1 ms per field;
    the caller forks the RNG so decoding never changes torch's global random state), then overwritten.
    """
    f = ClusterField(arch)
    off = 0
    with torch.no_grad():
        for lin, (o, i) in zip(f.linears, arch.layer_shapes(), strict=True):
            lin.weight.copy_(flat[off: off + o * i].reshape(o, i))
            off += o * i
            lin.bias.copy_(flat[off: off + o])
            off += o
    return f


def _build_model(src: ByteSource | FileSource, hdr: NgsHeader, path: Path, n_clusters: int | None) -> NeuralGSModel:
    k = hdr.n_clusters if n_clusters is None else min(n_clusters, hdr.n_clusters)
    arch = FieldArch(sh_degree=hdr.sh_degree, hidden=hdr.hidden, layers=hdr.layers, pe_freqs=hdr.pe_freqs)
    if arch.n_params() != hdr.n_params:  # the torch-free mirror must agree with the model code
        raise RuntimeError(f"parameter count mismatch: FieldArch {arch.n_params()} vs format {hdr.n_params}")
    sizes = list(hdr.cluster_sizes[:k])
    n = sum(sizes)
    payload = read_section(src, hdr.sections[0], path)
    q = np.frombuffer(payload, dtype="<u2", count=3 * n).reshape(n, 3)
    positions = torch.from_numpy(dequantise_positions(q, hdr.pos_lo, hdr.pos_hi))
    fields = []
    with torch.random.fork_rng(devices=[]):
        for c in range(k):
            sec = hdr.sections[1 + c]
            w = np.frombuffer(read_section(src, sec, path), dtype="<f2")
            if not np.isfinite(w).all():
                raise NgsFormatError(path, f"non-finite weights (float16 Inf/NaN) in section {sec.name}")
            fields.append(_field_from_flat(arch, torch.from_numpy(w.astype(np.float32))))
    return NeuralGSModel(
        arch=arch,
        positions=positions,
        cluster_sizes=sizes,
        fields=fields,
        pos_lo=torch.from_numpy(hdr.pos_lo.copy()),
        pos_hi=torch.from_numpy(hdr.pos_hi.copy()),
        attr_lo=torch.from_numpy(hdr.attr_lo.copy()),
        attr_hi=torch.from_numpy(hdr.attr_hi.copy()),
        meta=dict(hdr.meta),
    )
