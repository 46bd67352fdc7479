"""Niantic .spz: a v2 file built byte by byte from the documented layout, our writer's round trip within
SPZ's quantisation steps, malformed files, and splat-transform (npm) as the independent implementation:
its .spz files read by us, ours read by it, and its writer's bytes vs ours."""

from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib

import numpy as np
import plyfile
import pytest
import torch
import zstandard

from core.errors import InputFileError
from core.io import write_ply
from core.io.spz import MAGIC, encode_spz_blocks, looks_like_spz, read_spz, spz_bytes, write_spz
from core.paths import DEMO_SCENE
from core.render.sh import sh_basis
from core.scene import GaussianScene
from tests.conftest import shared_path
from tests.core.splat_transform_helper import (
    splat_transform,
)
from tests.core.test_io_ply import random_scene

logger = logging.getLogger(__name__)
DONUT = DEMO_SCENE

# Quantisation half-steps of SPZ as Niantic's packer writes it (round to nearest):
POS_TOL = 2.0**-13  # 12 fractional bits
LOG_SCALE_TOL = 1 / 32  # b / 16 - 10
ALPHA_TOL = 0.5 / 255  # after the sigmoid
DC_TOL = 0.5 / (255 * 0.15)  # (b / 255 - 0.5) / 0.15
SH1_TOL, SH_REST_TOL = 4.5 / 128, 8.5 / 128  # round(x * 128) then buckets of 8 (degree 1) / 16 (higher)
QUAT_COMPONENT_TOL = 0.5 * math.sqrt(0.5) / 511  # v3+ smallest three, 9-bit magnitudes
QUAT_V2_TOL = 0.5 / 127.5
DC_RANGE = (-0.5 / 0.15, 0.5 / 0.15)
LOG_SCALE_RANGE = (-10.0, 255 / 16 - 10)
SH_RANGE = (-1.0, 127 / 128)


def ply_columns(path) -> dict[str, np.ndarray]:
    """A decoded .ply (splat-transform's output) as scene-layout float32 arrays, read by name with plyfile."""
    d = plyfile.PlyData.read(str(path))["vertex"].data
    m = sum(1 for k in d.dtype.names if k.startswith("f_rest_")) // 3

    def cols(*names):
        return np.stack([d[k] for k in names], 1).astype(np.float32)

    rest = [np.stack([d[f"f_rest_{c * m + k}"] for c in range(3)], 1) for k in range(m)]
    return {
        "means": cols("x", "y", "z"),
        "quats": cols("rot_0", "rot_1", "rot_2", "rot_3"),
        "log_scales": cols("scale_0", "scale_1", "scale_2"),
        "opacity_logits": np.asarray(d["opacity"], np.float32),
        "sh_dc": cols("f_dc_0", "f_dc_1", "f_dc_2"),
        "sh_rest": np.stack(rest, 1).astype(np.float32) if m else np.zeros((len(d), 0, 3), np.float32),
    }


def scene_arrays(scene: GaussianScene) -> dict[str, np.ndarray]:
    return {name: t.numpy() for name, t in zip(scene.field_names(), scene.tensors())}


def assert_within_spz_quantisation(got: GaussianScene, src: GaussianScene, version: int = 4) -> dict[str, float]:
    """``got`` (decoded SPZ) equals ``src`` within each attribute's half quantisation step; returns the max errors."""
    g, s = scene_arrays(got), scene_arrays(src)
    errs = {}

    def check(name, a, b, tol):
        err = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
        errs[name] = err
        assert err <= tol, f"{name}: max error {err} > {tol}"

    check("means", g["means"], s["means"], POS_TOL * (1 + 1e-6) + 1e-7 * np.abs(s["means"]).max())
    check("log_scales", g["log_scales"], np.clip(s["log_scales"], *LOG_SCALE_RANGE), LOG_SCALE_TOL + 1e-6)
    check("alpha", torch.sigmoid(got.opacity_logits.double()).numpy(),
          torch.sigmoid(src.opacity_logits.double()).numpy().clip(1e-6, 1 - 1e-6), ALPHA_TOL + 2e-6)
    check("sh_dc", g["sh_dc"], np.clip(s["sh_dc"], *DC_RANGE), DC_TOL + 1e-6)
    q_src, q_got = src.unit_quats().double(), got.quats.double()
    if version == 2:  # x y z stored with w >= 0; w rebuilt from unit length (its error grows as w -> 0)
        q_src = q_src * torch.where(q_src[:, :1] < 0, -1.0, 1.0)
        errs["quat_xyz"] = float((q_got[:, 1:] - q_src[:, 1:]).abs().max())
        assert errs["quat_xyz"] <= QUAT_V2_TOL + 1e-6
    else:  # three components stored, the largest rebuilt: it is >= 1/2, so off by at most ~4.3 steps
        q_src = q_src * torch.where((q_got * q_src).sum(1, keepdim=True) < 0, -1.0, 1.0)
        err = (q_got - q_src).abs()
        largest = q_src.abs().argmax(1, keepdim=True)
        stored = err.scatter(1, largest, 0.0)
        errs["quat_stored"], errs["quat_rebuilt"] = float(stored.max()), float(err.gather(1, largest).max())
        assert errs["quat_stored"] <= QUAT_COMPONENT_TOL + 1e-6
        assert errs["quat_rebuilt"] <= 4.5 * QUAT_COMPONENT_TOL
    m = s["sh_rest"].shape[1]
    if m:
        rest = np.clip(s["sh_rest"], *SH_RANGE)
        check("sh_rest_deg1", g["sh_rest"][:, :3], rest[:, :3], SH1_TOL + 1e-6)
        if m > 3:
            check("sh_rest_higher", g["sh_rest"][:, 3:], rest[:, 3:], SH_REST_TOL + 1e-6)
    return errs


def spz_friendly_scene(n: int, degree: int, seed: int) -> GaussianScene:
    """random_scene within SPZ's ranges (positions that fit 24 bits at 12 fractional bits)."""
    s = random_scene(n, degree, seed=seed)
    return GaussianScene(s.means.clamp(-2000, 2000), *s.tensors()[1:])


# -- a v2 file byte by byte ---------------------------------------------------------------------------
def v2_bytes(gzipped: bool = True) -> bytes:
    """Two splats, SH degree 1, 12 fractional bits, as nianticlabs/spz documents version 2."""
    header = struct.pack("<IIIBBBB", MAGIC, 2, 2, 1, 12, 0, 0)
    positions = bytes([0x00, 0x10, 0x00,  0xFF, 0xFF, 0xFF,  0x00, 0x00, 0x80,    # 1.0, -1/4096, -2048
                       0x00, 0x08, 0x00,  0x00, 0x00, 0x00,  0xFF, 0xFF, 0x7F])   # 0.5, 0, 2047.99976
    alphas = bytes([0, 255])
    colors = bytes([0, 128, 255,  64, 191, 127])
    scales = bytes([0, 160, 255,  80, 96, 112])
    rotations = bytes([128, 128, 128,  255, 0, 128])  # x y z; w rebuilt
    sh = bytes(range(100, 109)) + bytes([0, 128, 255] * 3)  # per splat 3 coefficients x RGB (RGB innermost)
    raw = header + positions + alphas + colors + scales + rotations + sh
    return gzip.compress(raw) if gzipped else raw


@pytest.mark.parametrize("gzipped", [True, False])
def test_hand_built_v2_decodes_as_documented(tmp_path, gzipped):
    scene, encoding, warnings = read_spz(v2_bytes(gzipped), tmp_path / "two.spz")
    assert encoding == ("spz v2 (gzip)" if gzipped else "spz v2")
    assert warnings == ([] if gzipped else ["SPZ v2 file is not gzip-compressed (read as is)"])
    assert (scene.num_gaussians, scene.sh_degree) == (2, 1)
    f32 = lambda *v: torch.tensor(v, dtype=torch.float64).float()
    assert torch.equal(scene.means, f32([1.0, -1 / 4096, -2048.0], [0.5, 0.0, (2**23 - 1) / 4096]))
    logit = lambda a: math.log(a / (1 - a))
    assert torch.equal(scene.opacity_logits, f32(logit(1e-6), logit(1 - 1e-6)))
    dc = lambda b: (b / 255 - 0.5) / 0.15
    assert torch.equal(scene.sh_dc, f32([dc(0), dc(128), dc(255)], [dc(64), dc(191), dc(127)]))
    assert torch.equal(scene.log_scales, f32([-10.0, 0.0, 255 / 16 - 10], [-5.0, -4.0, -3.0]))
    x = lambda b: b / 127.5 - 1
    w0 = math.sqrt(1 - 3 * x(128) ** 2)
    w1 = math.sqrt(max(0.0, 1 - (x(255) ** 2 + x(0) ** 2 + x(128) ** 2)))
    assert torch.equal(scene.quats, f32([w0, x(128), x(128), x(128)], [w1, x(255), x(0), x(128)]))
    sh = lambda b: (b - 128) / 128
    assert torch.equal(scene.sh_rest[0], f32(*[[sh(100 + 3 * k + c) for c in range(3)] for k in range(3)]))
    assert torch.equal(scene.sh_rest[1], f32(*[[sh(0), sh(128), sh(255)]] * 3))


def test_smallest_three_words_decode_as_documented(tmp_path):
    """v3+ rotations: bits 30-31 the largest of (x, y, z, w); 10 bits per other component, highest index lowest."""
    n = 3
    words = [
        3 << 30,  # w largest, x = y = z = 0: identity
        (0 << 30) | (511 << 20) | ((1 << 9) | 511) << 10 | 0,  # x largest; y = +max, z = -max, w = 0
        (2 << 30) | (100 << 20) | (200 << 10) | ((1 << 9) | 300),  # z largest; x, y, then w negative
    ]
    blocks = [bytes(9 * n), bytes(n), bytes(3 * n), bytes(3 * n), struct.pack("<3I", *words)]
    raw = struct.pack("<IIIBBBB", MAGIC, 3, n, 0, 12, 0, 0) + b"".join(blocks)
    scene, encoding, _ = read_spz(gzip.compress(raw), tmp_path / "q.spz")
    assert encoding == "spz v3 (gzip)"
    r = lambda m: math.sqrt(0.5) * m / 511
    want = torch.tensor([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, math.sqrt(max(0.0, 1 - 2 * r(511) ** 2)), r(511), -r(511)],
        [-r(300), r(100), r(200), math.sqrt(1 - r(100) ** 2 - r(200) ** 2 - r(300) ** 2)],
    ], dtype=torch.float64).float()
    assert torch.equal(scene.quats, want)


# -- our writer ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("degree", [0, 1, 3])
def test_write_read_round_trip_within_quantisation(tmp_path, version, degree):
    scene = spz_friendly_scene(700, degree, seed=version * 10 + degree)
    path = tmp_path / "s.spz"
    size = write_spz(scene, path, version=version)
    assert size == path.stat().st_size
    back, encoding, warnings = read_spz(path.read_bytes(), path)
    assert encoding == (f"spz v{version}" if version == 4 else f"spz v{version} (gzip)")
    assert warnings == [] and back.sh_degree == degree and back.num_gaussians == 700
    errs = assert_within_spz_quantisation(back, scene, version)
    logger.info("SPZ v%d SH %d round trip max errors: %s", version, degree, errs)


def test_writer_refuses_and_overwrites(tmp_path):
    scene = spz_friendly_scene(10, 0, seed=1)
    path = tmp_path / "s.spz"
    write_spz(scene, path)
    with pytest.raises(FileExistsError):
        write_spz(scene, path)
    write_spz(scene, path, version=3, overwrite=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    bad = GaussianScene(scene.means * float("nan"), *scene.tensors()[1:])
    with pytest.raises(ValueError, match="non-finite"):
        write_spz(bad, tmp_path / "nan.spz")
    with pytest.raises(ValueError, match="24-bit"):
        write_spz(GaussianScene(scene.means + 1e7, *scene.tensors()[1:]), tmp_path / "far.spz")


def test_large_coordinates_use_fewer_fractional_bits(tmp_path):
    scene = spz_friendly_scene(50, 0, seed=2)
    scene = GaussianScene(scene.means * 50 + 30_000, *scene.tensors()[1:])  # beyond 2047: 12 bits overflow
    data = spz_bytes(scene, 4)
    fb = data[13]
    assert fb < 12 and float(scene.means.abs().max()) * 2**fb < 2**23
    back, _, _ = read_spz(data, tmp_path / "far.spz")
    assert float((back.means - scene.means).abs().max()) <= 2.0 ** -(fb + 1) + 1e-3


@pytest.mark.parametrize("version", [2, 3, 4])
def test_empty_scene(tmp_path, version):
    empty = spz_friendly_scene(4, 1, seed=0).subset(torch.zeros(4, dtype=torch.bool))
    back, _, warnings = read_spz(spz_bytes(empty, version), tmp_path / "empty.spz")
    assert back.num_gaussians == 0 and back.sh_degree == 1 and warnings == ["the file holds no splats"]


def test_antialiased_flag_reported(tmp_path):
    scene = spz_friendly_scene(5, 0, seed=3)
    for version, encoding in ((4, "spz v4, antialiased"), (3, "spz v3 (gzip), antialiased")):
        _, enc, warnings = read_spz(spz_bytes(scene, version, antialiased=True), tmp_path / "aa.spz")
        assert enc == encoding and any("antialiased" in w for w in warnings)


def _rotation_matrices(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = torch.nn.functional.normalize(q.double(), dim=1).unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], 1).reshape(-1, 3, 3)


def test_rub_coordinate_system_is_a_half_turn_about_x(tmp_path):
    """coordinate_system='rub' (the SPZ README's convention) maps (x, y, z) -> (x, -y, -z): positions,
    rotations (R -> F R F) and view-dependent colour (SH at direction d -> SH at F d) all follow."""
    scene = spz_friendly_scene(200, 3, seed=4)
    data = spz_bytes(scene, 4)
    raw, _, _ = read_spz(data, tmp_path / "a.spz")
    rub, _, _ = read_spz(data, tmp_path / "a.spz", coordinate_system="rub")
    flip = torch.tensor([1.0, -1.0, -1.0])
    assert torch.equal(rub.means, raw.means * flip)
    f = torch.diag(flip.double())
    assert torch.allclose(_rotation_matrices(rub.quats), f @ _rotation_matrices(raw.quats) @ f, atol=1e-6)
    dirs = torch.nn.functional.normalize(torch.randn(200, 3, generator=torch.Generator().manual_seed(5)), dim=1)
    colour = lambda s, d: (sh_basis(3, d)[..., None] * s.sh_coeffs()).sum(1)
    assert torch.allclose(colour(rub, dirs * flip), colour(raw, dirs), atol=1e-6)
    assert torch.equal(rub.log_scales, raw.log_scales) and torch.equal(rub.sh_dc, raw.sh_dc)
    # writing with 'rub' undoes it: the bytes equal those of the flipped scene written raw
    assert spz_bytes(rub, 4, coordinate_system="rub") == spz_bytes(raw, 4)
    with pytest.raises(ValueError, match="coordinate_system"):
        read_spz(data, tmp_path / "a.spz", coordinate_system="luf")


def test_looks_like_spz():
    scene = spz_friendly_scene(5, 0, seed=0)
    for data in (v2_bytes(True), v2_bytes(False), spz_bytes(scene, 3), spz_bytes(scene, 4)):
        assert looks_like_spz(data)
    for data in (b"", b"ply\n", gzip.compress(b"ply\nformat"), b"\x1f\x8b broken", b"PK\x03\x04", b"NGS"):
        assert not looks_like_spz(data)


# -- malformed files -----------------------------------------------------------------------------------
def _v4_parts(scene: GaussianScene) -> tuple[bytearray, list[tuple[int, int]]]:
    data = bytearray(spz_bytes(scene, 4))
    ns, toc = data[15], struct.unpack_from("<I", data, 16)[0]
    return data, [struct.unpack_from("<QQ", data, toc + 16 * i) for i in range(ns)]


def test_malformed_spz(tmp_path):
    path = tmp_path / "bad.spz"
    scene = spz_friendly_scene(40, 1, seed=6)
    v3 = gzip.decompress(spz_bytes(scene, 3))

    def raises(data: bytes, fragment: str) -> None:
        with pytest.raises(InputFileError, match=fragment) as info:
            read_spz(bytes(data), path)
        assert str(info.value).startswith(str(path))

    raises(b"", "empty")
    raises(b"hello world, not a scene", "not an SPZ file")
    raises(gzip.compress(b"NGSQ" + v3[4:]), "magic")
    raises(gzip.compress(v3[:4] + struct.pack("<I", 1) + v3[8:]), "version 1")
    raises(gzip.compress(v3[:4] + struct.pack("<I", 7) + v3[8:]), "unsupported SPZ version 7")
    raises(gzip.compress(v3[:12] + bytes([5]) + v3[13:]), "SH degree 5")
    raises(gzip.compress(v3[:13] + bytes([40]) + v3[14:]), "fractional bits")
    raises(gzip.compress(v3[:8] + struct.pack("<I", 41) + v3[12:]), "truncated.*41 splats")
    raises(gzip.compress(v3[:8] + struct.pack("<I", 20_000_000) + v3[12:]), "limit of 10,000,000")
    raises(gzip.compress(v3[:8] + struct.pack("<I", 500_000) + v3[12:]), "more than this .*gzip file can hold")
    raises(gzip.compress(v3[:8] + struct.pack("<I", 2_000_000) + v3[12:]), "implausibly many")
    raises(spz_bytes(scene, 3)[:-100], "truncated")
    raises(gzip.compress(v3[:10]), "too short for its header")

    v4, table = _v4_parts(scene)
    toc = 32
    bad = bytearray(v4)
    bad[15] = 4
    raises(bad, "4 streams; SH degree 1 needs 6")
    bad = bytearray(v4)
    struct.pack_into("<I", bad, 16, len(v4))
    raises(bad, "stream table")
    bad = bytearray(v4)
    struct.pack_into("<Q", bad, toc + 8, table[0][1] + 9)
    raises(bad, "positions stream says 369 bytes uncompressed; 40 splats need 360")
    bad = bytearray(v4)
    struct.pack_into("<Q", bad, toc + 16 * 5, 10**9)
    raises(bad, "sh stream .* runs past the end")
    bad = bytearray(v4)
    struct.pack_into("<I", bad, 8, 2_000_000)
    raises(bad, "implausibly many")
    raises(v4[:-7], "runs past the end")
    raises(v4[:20], "too short for its 32-byte header")
    # a stream that is valid zstd but inflates beyond its table entry: refused without inflating it all
    bomb = zstandard.ZstdCompressor().compress(bytes(50_000_000))
    start = toc + 16 * len(table)
    entry = struct.pack("<QQ", len(bomb), table[0][1])
    bad = v4[:toc] + entry + v4[toc + 16 : start] + bomb + v4[start + table[0][0] :]
    raises(bad, "positions stream decompresses to more than 360 bytes")
    # corrupt zstd
    bad = bytearray(v4)
    bad[start : start + 4] = b"\0\0\0\0"
    raises(bad, "corrupt SPZ positions stream")


def test_gzip_bomb_after_the_splats_is_not_inflated(tmp_path):
    """A legacy file whose gzip stream goes on for 1 GiB of zeros after its splats: read with a warning,
    quickly, inflating only what the header implies. (The bomb is one full-flushed deflate segment of
    1 MiB of zeros repeated 1024 times; nothing here inflates it.)"""
    scene = spz_friendly_scene(10, 0, seed=7)
    raw = gzip.decompress(spz_bytes(scene, 3))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = z.compress(raw) + z.flush(zlib.Z_FULL_FLUSH)
    segment = z.compress(bytes(1 << 20)) + z.flush(zlib.Z_FULL_FLUSH)
    data = head + segment * 1024 + z.flush()
    assert len(data) < 2_000_000
    back, _, warnings = read_spz(data, tmp_path / "bomb.spz")
    assert back.num_gaussians == 10 and warnings == ["data after the splats in the gzip stream ignored"]


def test_v4_trailing_bytes_and_extensions_warn(tmp_path):
    scene = spz_friendly_scene(8, 0, seed=8)
    v4, _ = _v4_parts(scene)
    _, _, warnings = read_spz(bytes(v4) + b"xyz", tmp_path / "t.spz")
    assert warnings == ["3 bytes after the last SPZ stream ignored"]
    ext = bytearray(v4[:32]) + b"EXTENSION!" + v4[32:]
    ext[14] |= 0x2
    struct.pack_into("<I", ext, 16, 42)
    back, _, warnings = read_spz(bytes(ext), tmp_path / "e.spz")
    assert warnings == ["10 bytes of SPZ extensions ignored"] and back.num_gaussians == 8


def test_degree_4_drops_the_fourth_band(tmp_path):
    scene = spz_friendly_scene(6, 3, seed=9)
    _, blocks = encode_spz_blocks(scene, 4)
    sh4 = np.frombuffer(blocks[5], np.uint8).reshape(6, 15, 3)
    sh4 = np.concatenate([sh4, np.full((6, 9, 3), 77, np.uint8)], 1)
    blocks[5] = sh4.tobytes()
    raw = struct.pack("<IIIBBBB", MAGIC, 3, 6, 4, 12, 0, 0) + b"".join(blocks)
    back, _, warnings = read_spz(gzip.compress(raw), tmp_path / "d4.spz")
    assert back.sh_degree == 3 and any("degree 4" in w for w in warnings)
    want, _, _ = read_spz(spz_bytes(scene, 3), tmp_path / "d3.spz")
    assert torch.equal(back.sh_rest, want.sh_rest)


# -- splat-transform, the independent implementation -------------------------------------------------
def _sources(tmp_path):
    """(name, ply path): the demo donut (SH 0, 45,624 splats), a synthetic SH-3 scene, and the real SH-3
    capture when ../shared/data is present."""
    synthetic = tmp_path / "synthetic-sh3.ply"
    write_ply(spz_friendly_scene(3000, 3, seed=12), synthetic)
    out = [("donut", DONUT), ("synthetic-sh3", synthetic)]
    try:
        out.append(("sh3-capture", shared_path("scenes", "sh3-capture.ply")))
    except pytest.skip.Exception:
        logger.info("sh3-capture.ply not available; SH-3 checked on the synthetic scene only")
    return out


@pytest.mark.parametrize("version", [3, 4])
def test_splat_transform_spz_read_by_us(tmp_path, splat_transform_cli, version):
    """splat-transform writes .spz from a PLY; our decode equals its own decode of that file (``.spz ->
    .ply``) bit for bit, and the source PLY within SPZ's quantisation: its axes are not flipped (it writes
    and reads CoordinateSystem UNSPECIFIED), so neither are ours by default."""
    from core.io import read_scene

    for name, src in _sources(tmp_path):
        spz = tmp_path / f"{name}.v{version}.spz"
        splat_transform(splat_transform_cli, src, spz, "--spz-version", str(version))
        ours, encoding, warnings = read_spz(spz.read_bytes(), spz)
        assert encoding == ("spz v4" if version == 4 else "spz v3 (gzip)") and warnings == []
        decoded = tmp_path / f"{name}.v{version}.ply"
        splat_transform(splat_transform_cli, spz, decoded)
        ref = ply_columns(decoded)
        for field, want in ref.items():
            np.testing.assert_array_equal(getattr(ours, field).numpy(), want, err_msg=f"{name} {field}")
        errs = assert_within_spz_quantisation(ours, read_scene(src), version)
        logger.info("%s: splat-transform SPZ v%d vs source PLY, max errors %s", name, version, errs)


@pytest.mark.parametrize("version", [3, 4])
def test_our_spz_read_by_splat_transform(tmp_path, splat_transform_cli, version):
    """Our .spz converted to .ply by splat-transform equals our own reader's decode bit for bit; our v4
    file is byte-identical to splat-transform's v4 file of the same PLY (same quantisation, zstd level
    12), our v3 inflates to the same bytes as its v3 (gzip levels differ)."""
    from core.io import read_scene

    for name, src in _sources(tmp_path):
        scene = read_scene(src)
        ours = tmp_path / f"{name}.ours.v{version}.spz"
        write_spz(scene, ours, version=version)
        decoded = tmp_path / f"{name}.ours.v{version}.ply"
        splat_transform(splat_transform_cli, ours, decoded)
        ref = ply_columns(decoded)
        back, _, _ = read_spz(ours.read_bytes(), ours)
        for field, want in ref.items():
            np.testing.assert_array_equal(getattr(back, field).numpy(), want, err_msg=f"{name} {field}")
        assert_within_spz_quantisation(back, scene, version)
        theirs = tmp_path / f"{name}.theirs.v{version}.spz"
        splat_transform(splat_transform_cli, src, theirs, "--spz-version", str(version))
        if version == 4:
            assert ours.read_bytes() == theirs.read_bytes(), name
        else:
            assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs.read_bytes()), name
