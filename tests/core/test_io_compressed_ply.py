"""PlayCanvas .compressed.ply: hand-packed records, quantisation round trips, and the real guitar scene
decoded by us vs by PlayCanvas' own splat-transform (npm)."""

from __future__ import annotations

import logging
import math

import numpy as np
import plyfile
import pytest
import torch

from core.errors import InputFileError
from core.io import read_scene, read_scene_with_info
from core.scene import GaussianScene
from tests.conftest import shared_path
from tests.core.splat_transform_helper import splat_transform
from tests.core.test_io_ply import random_scene

logger = logging.getLogger(__name__)
SH_C0 = 0.28209479177387814
BOUNDS = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
          "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"]
COLORS = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]


def build_compressed(chunks: np.ndarray, packed: np.ndarray, sh: np.ndarray | None = None) -> bytes:
    """Bytes of a compressed PLY from chunk records [C, 12 or 18] float, packed [N, 4] uint32, sh [N, K] uint8."""
    names = BOUNDS + (COLORS if chunks.shape[1] == 18 else [])
    head = ["ply", "format binary_little_endian 1.0", f"element chunk {len(chunks)}"]
    head += [f"property float {n}" for n in names] + [f"element vertex {len(packed)}"]
    head += [f"property uint packed_{n}" for n in ("position", "rotation", "scale", "color")]
    if sh is not None:
        head += [f"element sh {len(sh)}"] + [f"property uchar f_rest_{i}" for i in range(sh.shape[1])]
    body = chunks.astype("<f4").tobytes() + packed.astype("<u4").tobytes()
    body += sh.astype("u1").tobytes() if sh is not None else b""
    return ("\n".join(head + ["end_header"]) + "\n").encode() + body


def _pack_unorm(t: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def compressed_ply_bytes(scene: GaussianScene, chunk_colors: bool = True, with_sh: bool = True) -> bytes:
    """Encode ``scene`` the way PlayCanvas' writers do (chunks of 256 in file order), for tests."""
    n = scene.num_gaussians
    means, log_scales = scene.means.double().numpy(), scene.log_scales.double().numpy()
    color = 0.5 + SH_C0 * scene.sh_dc.double().numpy()
    color = color if chunk_colors else np.clip(color, 0, 1)
    chunks = np.zeros((-(-n // 256), 18 if chunk_colors else 12), np.float32)
    t = np.zeros((n, 9))
    for c in range(len(chunks)):
        sl = slice(256 * c, min(n, 256 * (c + 1)))
        for k, v in enumerate((means, log_scales) + ((color,) if chunk_colors else ())):
            lo, hi = v[sl].min(0).astype(np.float32), v[sl].max(0).astype(np.float32)
            chunks[c, 6 * k : 6 * k + 3], chunks[c, 6 * k + 3 : 6 * k + 6] = lo, hi
            span = (hi - lo).astype(np.float64)
            t[sl, 3 * k : 3 * k + 3] = np.where(span > 0, (v[sl] - lo) / np.where(span > 0, span, 1), 0)
    if not chunk_colors:
        t[:, 6:9] = color

    def pack111011(x):
        return (_pack_unorm(x[:, 0], 11) << 21) | (_pack_unorm(x[:, 1], 10) << 11) | _pack_unorm(x[:, 2], 11)

    q = scene.unit_quats().double().numpy()
    which = np.abs(q).argmax(1)
    q = q * np.where(q[np.arange(n), which] < 0, -1.0, 1.0)[:, None]
    rest = np.stack([np.delete(q[i], which[i]) for i in range(n)]) if n else np.zeros((0, 3))
    u = rest / math.sqrt(2) + 0.5
    rot = (which.astype(np.uint32) << 30) | (_pack_unorm(u[:, 0], 10) << 20) | (_pack_unorm(u[:, 1], 10) << 10)
    rot |= _pack_unorm(u[:, 2], 10)
    alpha = torch.sigmoid(scene.opacity_logits.double()).numpy()
    col = (_pack_unorm(t[:, 6], 8) << 24) | (_pack_unorm(t[:, 7], 8) << 16) | (_pack_unorm(t[:, 8], 8) << 8)
    col |= _pack_unorm(alpha, 8)
    packed = np.stack([pack111011(t[:, 0:3]), rot, pack111011(t[:, 3:6]), col], axis=1)
    sh = None
    if with_sh and scene.sh_rest.shape[1]:
        f_rest = scene.sh_rest.double().transpose(1, 2).reshape(n, -1).numpy()  # channel-major
        sh = np.clip(np.trunc((f_rest / 8 + 0.5) * 256), 0, 255)  # splat-transform's writer
    return build_compressed(chunks, packed, sh)


# -- hand-packed records ------------------------------------------------------------------------------
def test_hand_packed_records_decode_as_documented(tmp_path):
    chunk = np.array([[-1, 0, 10, 1, 4, 20, -5, -4, -3, -1, -2, 0, 0, 0, 0, 1, 1, 1]], np.float32)
    packed = np.array([
        [0, (0 << 30) | (512 << 20) | (512 << 10) | 512, 0xFFFFFFFF, 0xFF0080FF],
        [(2047 << 21) | (0 << 11) | 1023, (3 << 30) | (1023 << 20) | (0 << 10) | 1023, 0, 0x00FF0000],
        [(1023 << 21) | (1023 << 11) | 2047, (2 << 30) | (100 << 20) | (900 << 10) | 511, 1 << 11, 0x40404080],
    ], dtype=np.uint32)
    sh = np.array([[0, 255, 128, 1, 2, 3, 10, 20, 30]] * 3, np.uint8)
    path = tmp_path / "hand.compressed.ply"
    path.write_bytes(build_compressed(chunk, packed, sh))
    scene, info = read_scene_with_info(path)
    assert (info.format, info.n_gaussians, info.sh_degree, info.warnings) == ("compressed_ply", 3, 1, [])

    f32 = lambda *v: torch.tensor(v, dtype=torch.float64).float()
    lerp = lambda a, b, t: a * (1 - t) + b * t
    assert torch.equal(scene.means[0], f32(-1, 0, 10))
    assert torch.equal(scene.means[1], f32(1, 0, lerp(10, 20, 1023 / 2047)))
    assert torch.equal(scene.means[2], f32(lerp(-1, 1, 1023 / 2047), 4, 20))
    assert torch.equal(scene.log_scales[0], f32(-1, -2, 0))
    assert torch.equal(scene.log_scales[1], f32(-5, -4, -3))
    assert torch.equal(scene.log_scales[2], f32(-5, lerp(-4, -2, 1 / 1023), -3))
    r = lambda k: (k / 1023 - 0.5) * math.sqrt(2)
    largest = lambda a, b, c: math.sqrt(max(0.0, 1 - a * a - b * b - c * c))
    assert torch.equal(scene.quats[0], f32(largest(r(512), r(512), r(512)), r(512), r(512), r(512)))
    assert torch.equal(scene.quats[1], f32(r(1023), r(0), r(1023), largest(r(1023), r(0), r(1023))))
    assert torch.equal(scene.quats[2], f32(r(100), r(900), largest(r(100), r(900), r(511)), r(511)))
    assert torch.equal(scene.sh_dc[0], f32(0.5 / SH_C0, -0.5 / SH_C0, (128 / 255 - 0.5) / SH_C0))
    assert torch.equal(scene.sh_dc[1], f32(-0.5 / SH_C0, 0.5 / SH_C0, -0.5 / SH_C0))
    assert torch.equal(scene.opacity_logits, f32(40.0, -40.0, -math.log(255 / 128 - 1)))
    # SH bytes 0 / 255 are the ends (-4, +4); others bucket midpoints ((b + 0.5) / 256 - 0.5) * 8;
    # f_rest is channel-major: f_rest_{c*3+k} -> sh_rest[:, k, c]
    dec = lambda b: {0: -4.0, 255: 4.0}.get(b, ((b + 0.5) / 256 - 0.5) * 8)
    want = f32(*(dec(int(sh[0, c * 3 + k])) for k in range(3) for c in range(3))).reshape(3, 3)
    assert torch.equal(scene.sh_rest[1], want) and want[0, 1] == dec(1) and want[1, 0] == 4.0


@pytest.mark.parametrize("chunk_colors", [True, False])
def test_encode_decode_within_quantisation(tmp_path, chunk_colors):
    scene = random_scene(600, 3, seed=11)  # 3 chunks, the last one partial
    scene = GaussianScene(scene.means.clamp(-30, 30), *scene.tensors()[1:])
    path = tmp_path / "s.compressed.ply"
    path.write_bytes(compressed_ply_bytes(scene, chunk_colors=chunk_colors))
    back, info = read_scene_with_info(path)
    assert (info.n_gaussians, info.sh_degree, info.format) == (600, 3, "compressed_ply")
    def half_step(v: torch.Tensor, levels=(2047, 1023, 2047)) -> torch.Tensor:  # worst chunk's half step
        extent = torch.stack([v[i : i + 256].amax(0) - v[i : i + 256].amin(0) for i in (0, 256, 512)])
        return extent.max(0).values / torch.tensor(levels) / 2 + 1e-5

    def worst(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max())

    assert bool(((back.means - scene.means).abs() <= half_step(scene.means)).all()), worst(back.means, scene.means)
    assert bool(((back.log_scales - scene.log_scales).abs() <= half_step(scene.log_scales)).all())
    dots = (back.unit_quats() * scene.unit_quats()).sum(1).abs()
    assert float(dots.min()) > 1 - 1e-5
    color = 0.5 + SH_C0 * scene.sh_dc
    if chunk_colors:
        dc_tol = half_step(color, (255, 255, 255)) / SH_C0
    else:  # colours outside [0, 1] cannot be stored without per-chunk colour bounds
        dc_tol, color = torch.full((3,), (0.5 / 255 + 1e-6) / SH_C0), color.clamp(0, 1)
    want_dc = (color - 0.5) / SH_C0
    assert bool(((back.sh_dc - want_dc).abs() <= dc_tol).all()), worst(back.sh_dc, want_dc)
    assert worst(back.opacities(), scene.opacities()) <= 0.5 / 255 + 1e-6
    assert worst(back.sh_rest, scene.sh_rest) <= 8 / 256 / 2 + 1e-6


def test_malformed_compressed(tmp_path):
    scene = random_scene(300, 1)
    data = compressed_ply_bytes(scene)
    cases = {
        b"element chunk 2\n": (b"element chunk 1\n", "1 chunks for 300 splats; expected 2"),
        b"property uint packed_color\n": (b"property float packed_color\n", "'packed_color' is float, expected uint"),
        b"property uchar f_rest_8\n": (b"property short f_rest_8\n", "sh 'f_rest_8' is short, expected uchar"),
        b"element sh 300\n": (b"element sh 299\n", "299 'sh' records for 300 splats"),
        b"property float max_scale_z\n": (b"property float mux_scale_z\n", "lacks properties: chunk max_scale_z"),
    }
    for old, (new, fragment) in cases.items():
        path = tmp_path / "bad.compressed.ply"
        path.write_bytes(data.replace(old, new))
        with pytest.raises(InputFileError, match=fragment.replace("(", r"\(")):
            read_scene(path)
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(InputFileError, match="truncated.*'sh' records"):
        read_scene(path)


# -- the real guitar scene vs splat-transform --------------------------------------------------------------
def test_guitar_matches_splat_transform(tmp_path, splat_transform_cli):
    """Our decode of guitar.compressed.ply vs PlayCanvas splat-transform's (`guitar.compressed.ply ->
    guitar.ply`, read with plyfile).

    splat-transform (2.7.1 and 3.7.0 alike) keeps every splat in file order (no filtering, no reordering, checked
    below) and writes decoded float32 values. Observed: every finite value is bit-identical (both do
    the arithmetic in float64 and round once). The one deliberate difference is opacity where the
    alpha byte is 255 (667 splats) or 0: splat-transform writes +/-inf, we write +/-40 as the
    PlayCanvas engine does. Tolerances leave room for libm differences between Node and numpy:
    positions 1e-6 of the scene extent, log-scales/quats/f_dc/opacity 1e-6 absolute (plus 1e-6 relative).
    """
    src = shared_path("scenes", "guitar.compressed.ply")
    scene, info = read_scene_with_info(src)
    assert (info.format, info.n_gaussians, info.sh_degree, info.encoding) == (
        "compressed_ply", 90_854, 0, "binary_little_endian")
    assert info.warnings == []

    out = tmp_path / "guitar.ply"
    splat_transform(splat_transform_cli, src, out)
    ref = plyfile.PlyData.read(str(out))["vertex"].data
    assert len(ref) == scene.num_gaussians, "splat-transform dropped or added splats"
    cols = lambda *names: np.stack([ref[n] for n in names], axis=1).astype(np.float32)
    expected = {
        "means": cols("x", "y", "z"),
        "quats": cols("rot_0", "rot_1", "rot_2", "rot_3"),
        "log_scales": cols("scale_0", "scale_1", "scale_2"),
        "sh_dc": cols("f_dc_0", "f_dc_1", "f_dc_2"),
        "opacity_logits": np.asarray(ref["opacity"], np.float32),
    }
    ours = {name: getattr(scene, name).numpy() for name in expected}
    extent = float(np.ptp(expected["means"], axis=0).max())
    # same order? (splat-transform could reorder; if it did, match rows by sorting on position)
    order_ours = order_ref = np.arange(len(ref))
    if np.abs(ours["means"] - expected["means"]).max() > 1e-4 * extent:
        order_ours, order_ref = np.lexsort(ours["means"].T), np.lexsort(expected["means"].T)
        logger.warning("splat-transform reordered the splats; comparing rows sorted by position")

    opacity_ref = expected["opacity_logits"]
    inf = ~np.isfinite(opacity_ref)
    assert np.isinf(opacity_ref[inf]).all(), "splat-transform wrote NaN opacities"
    stats = {}
    for name, want in expected.items():
        got, want = ours[name][order_ours], want[order_ref]
        finite = np.isfinite(want)
        diff = np.abs(got - want)[finite]
        stats[name] = (float(diff.max()), float(np.mean(got[finite] == want[finite])))
        atol = 1e-6 * extent if name == "means" else 1e-6
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=atol, err_msg=name)
    got_op = ours["opacity_logits"][order_ours][inf[order_ref]]
    np.testing.assert_array_equal(got_op, np.where(opacity_ref[order_ref][inf[order_ref]] > 0, 40.0, -40.0))
    logger.info("guitar vs splat-transform: max |diff|, fraction bit-identical: %s; %d +/-inf opacities",
                stats, int(inf.sum()))


def test_sh_element_matches_splat_transform(tmp_path, splat_transform_cli):
    """guitar has no SH: check the ``sh`` element (and chunk-colour-less files) on a synthetic SH-3 file."""
    scene = random_scene(700, 3, seed=21)
    src = tmp_path / "sh3.compressed.ply"
    src.write_bytes(compressed_ply_bytes(scene, chunk_colors=False))
    ours = read_scene(src)
    out = tmp_path / "sh3.ply"
    splat_transform(splat_transform_cli, src, out)
    ref = plyfile.PlyData.read(str(out))["vertex"].data
    assert len(ref) == 700
    m = 15
    want_rest = np.stack([np.stack([ref[f"f_rest_{c * m + k}"] for c in range(3)], 1) for k in range(m)], 1)
    np.testing.assert_array_equal(ours.sh_rest.numpy(), want_rest)  # channel-major, same byte decoding
    want = np.stack([ref[n] for n in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "scale_0", "rot_3")], 1)
    got = torch.cat([ours.means, ours.sh_dc, ours.log_scales[:, :1], ours.quats[:, 3:]], 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
