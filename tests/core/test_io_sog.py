"""PlayCanvas SOG: scenes built texel by texel from the documented layout (version 2 and the legacy
version 1), bundled (.sog zip) and unbundled (meta.json + WebP), malformed files and bombs, and
splat-transform (npm) as the independent implementation: its .sog read by us vs its own decode."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import InputFileError
from core.io import read_scene, write_ply
from core.io.sog import looks_like_sog, read_sog
from core.paths import DEMO_SCENE
from core.scene import GaussianScene
from tests.conftest import shared_path
from tests.core.splat_transform_helper import (
    splat_transform,
)
from tests.core.test_io_ply import random_scene
from tests.core.test_io_spz import ply_columns

logger = logging.getLogger(__name__)
DONUT = DEMO_SCENE


# -- building SOG files ---------------------------------------------------------------------------------
def webp_bytes(texels: np.ndarray) -> bytes:
    """Lossless WebP of RGBA texels [h, w, 4] uint8, colour kept under alpha 0 (``exact``)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(texels, np.uint8), "RGBA").save(buf, "WEBP", lossless=True, exact=True)
    return buf.getvalue()


def layout(n: int) -> tuple[int, int]:
    """splat-transform's texture size for n splats (write-sog.ts)."""
    w = max(4, math.ceil(math.sqrt(n) / 4) * 4)
    return w, max(4, math.ceil(n / w / 4) * 4)


def image(per_splat: np.ndarray, n: int, fill_alpha: int = 255) -> bytes:
    """Texel i = row i of ``per_splat`` [n, 3 or 4] uint8, the rest zero, in a splat-transform-sized image."""
    w, h = layout(n)
    tex = np.zeros((w * h, 4), np.uint8)
    tex[:, 3] = fill_alpha
    tex[:n, : per_splat.shape[1]] = per_splat
    return webp_bytes(tex.reshape(h, w, 4))


def bundle(files: dict[str, bytes], meta: dict | str) -> bytes:
    """A .sog: the files then meta.json (``meta`` a dict, or its JSON text as is), stored as splat-transform does."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("meta.json", meta if isinstance(meta, str) else json.dumps(meta))
    return buf.getvalue()


def write_folder(folder: Path, files: dict[str, bytes], meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder / "meta.json"


def log_transform(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log(np.abs(x) + 1)


def encode_sog_v2(scene: GaussianScene) -> tuple[dict[str, bytes], dict]:
    """A simple SOG v2 encoder for tests (file order, no Morton sort): 16-bit log positions, smallest-three
    quaternions, 256-entry quantile codebooks with nearest-entry labels, one SH palette entry per splat."""
    n = scene.num_gaussians
    pos = scene.means.double().numpy()
    lt = log_transform(pos)
    mins, maxs = lt.min(0), lt.max(0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    v = np.clip(np.round((lt - mins) / span * 65535), 0, 65535).astype(np.int64)
    q = scene.unit_quats().double().numpy()
    largest = np.abs(q).argmax(1)
    q = q * np.where(q[np.arange(n), largest] < 0, -1.0, 1.0)[:, None]
    rest = np.stack([np.delete(q[i], largest[i]) for i in range(n)])
    quats = np.concatenate([np.clip(np.round((rest * math.sqrt(2) * 0.5 + 0.5) * 255), 0, 255),
                            (252 + largest)[:, None]], 1).astype(np.uint8)

    def codebook(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cb = np.quantile(values.ravel(), np.linspace(0, 1, 256)).astype(np.float32).astype(np.float64)
        mid = (cb[:-1] + cb[1:]) / 2
        return cb, np.searchsorted(mid, values, side="right").astype(np.uint8)

    scale_cb, scale_idx = codebook(scene.log_scales.double().numpy())
    dc_cb, dc_idx = codebook(scene.sh_dc.double().numpy())
    alpha = np.clip(np.round(torch.sigmoid(scene.opacity_logits.double()).numpy() * 255), 0, 255).astype(np.uint8)
    files = {
        "means_l.webp": image((v & 0xFF).astype(np.uint8), n),
        "means_u.webp": image((v >> 8).astype(np.uint8), n),
        "quats.webp": image(quats, n),
        "scales.webp": image(scale_idx, n),
        "sh0.webp": image(np.concatenate([dc_idx, alpha[:, None]], 1), n),
    }
    meta = {
        "version": 2, "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": scale_cb.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": dc_cb.tolist(), "files": ["sh0.webp"]},
    }
    m = scene.sh_rest.shape[1]
    if m:
        sh_cb, sh_idx = codebook(scene.sh_rest.double().numpy())  # [n, m, 3] indices
        rows = math.ceil(n / 64)
        cen = np.zeros((rows * 64, m, 4), np.uint8)
        cen[:n, :, :3], cen[:, :, 3] = sh_idx, 255
        labels = np.stack([np.arange(n) & 0xFF, np.arange(n) >> 8, np.zeros(n)], 1).astype(np.uint8)
        files["shN_centroids.webp"] = webp_bytes(cen.reshape(rows, 64 * m, 4))
        files["shN_labels.webp"] = image(labels, n)
        meta["shN"] = {"count": n, "bands": {3: 1, 8: 2, 15: 3}[m], "codebook": sh_cb.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    return files, meta


def hand_built_v2() -> tuple[dict[str, bytes], dict, dict]:
    """Three splats, SH degree 1, every texel written by hand; returns (files, meta, texel bytes)."""
    n = 3
    tex = {
        "lo": np.array([[0, 0, 0], [255, 255, 255], [0x34, 0x00, 0xFF]], np.uint8),
        "hi": np.array([[0, 0, 0], [255, 255, 255], [0x12, 0x80, 0x7F]], np.uint8),
        "quats": np.array([[128, 128, 128, 252], [0, 255, 10, 254], [1, 2, 3, 17]], np.uint8),
        "scales": np.array([[0, 1, 255], [7, 8, 9], [100, 200, 250]], np.uint8),
        "sh0": np.array([[0, 128, 255, 0], [1, 2, 3, 255], [10, 20, 30, 128]], np.uint8),
        "labels": np.array([[1, 0, 0], [0, 0, 0], [2, 0, 0]], np.uint8),  # splat 2: past the 2-entry palette
    }
    centroids = np.zeros((1, 64 * 3, 4), np.uint8)
    centroids[0, :6, :3] = np.arange(18, dtype=np.uint8).reshape(6, 3) * 10  # entries 0 and 1, 3 coefficients
    centroids[..., 3] = 255
    files = {
        "means_l.webp": image(tex["lo"], n), "means_u.webp": image(tex["hi"], n),
        "quats.webp": image(tex["quats"], n), "scales.webp": image(tex["scales"], n),
        "sh0.webp": image(tex["sh0"], n), "shN_centroids.webp": webp_bytes(centroids),
        "shN_labels.webp": image(tex["labels"], n),
    }
    ramp = [round(-2 + i / 64, 6) for i in range(256)]
    meta = {
        "version": 2, "count": n,
        "means": {"mins": [-2.0, 0.0, 1.0], "maxs": [2.0, 0.0, 3.0], "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": [round(-8 + i / 32, 6) for i in range(256)], "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": ramp, "files": ["sh0.webp"]},
        "shN": {"count": 2, "bands": 1, "codebook": [round(i / 256 - 0.5, 6) for i in range(256)],
                "files": ["shN_centroids.webp", "shN_labels.webp"]},
    }
    tex["centroids"] = centroids
    return files, meta, tex


def expected_hand_built(meta: dict, tex: dict) -> dict[str, np.ndarray]:
    """The documented decode of :func:`hand_built_v2`, in float64, per splat."""
    mins, maxs = np.array(meta["means"]["mins"]), np.array(meta["means"]["maxs"])
    span = np.where(maxs - mins == 0, 1.0, maxs - mins)
    v = tex["lo"].astype(np.float64) + 256.0 * tex["hi"]
    t = mins + span * (v / 65535)
    means = np.sign(t) * (np.exp(np.abs(t)) - 1)
    quats = []
    for px, py, pz, tag in tex["quats"].astype(np.int64):
        if not 252 <= tag <= 255:
            quats.append([1.0, 0.0, 0.0, 0.0])
            continue
        abc = [(b / 255 * 2 - 1) / math.sqrt(2) for b in (px, py, pz)]
        others = [k for k in range(4) if k != tag - 252]
        q = [0.0] * 4
        for k, a in zip(others, abc):
            q[k] = a
        q[tag - 252] = math.sqrt(max(0.0, 1 - sum(a * a for a in abc)))
        quats.append(q)
    scb, dcb, shcb = (np.array(meta[k]["codebook"]) for k in ("scales", "sh0", "shN"))
    alpha = np.clip(tex["sh0"][:, 3] / 255, 1e-6, 1 - 1e-6)
    sh = np.zeros((3, 3, 3))
    for i, label in enumerate(tex["labels"][:, 0]):
        if label < meta["shN"]["count"]:
            sh[i] = shcb[tex["centroids"][0, label * 3 : label * 3 + 3, :3]]
    return {"means": means, "quats": np.array(quats), "log_scales": scb[tex["scales"]],
            "opacity_logits": np.log(alpha / (1 - alpha)), "sh_dc": dcb[tex["sh0"][:, :3]], "sh_rest": sh}


def assert_scene_equals(scene: GaussianScene, want: dict[str, np.ndarray]) -> None:
    for name, w in want.items():
        np.testing.assert_array_equal(getattr(scene, name).numpy(), w.astype(np.float32), err_msg=name)


# -- version 2 by hand ------------------------------------------------------------------------------------
def test_hand_built_v2_bundled_and_unbundled(tmp_path):
    files, meta, tex = hand_built_v2()
    want = expected_hand_built(meta, tex)
    sog = tmp_path / "hand.sog"
    sog.write_bytes(bundle(files, meta))
    scene, encoding, warnings = read_sog(sog.read_bytes(), sog)
    assert encoding == "sog v2 (bundled)" and (scene.num_gaussians, scene.sh_degree) == (3, 1)
    assert warnings == [
        "1 splats have an invalid rotation tag (not 252-255); set to identity",
        "1 splats have an SH palette label past its 2 entries; their higher SH set to zero",
    ]
    assert_scene_equals(scene, want)
    meta_path = write_folder(tmp_path / "unbundled", files, meta)
    scene2, encoding2, _ = read_sog(meta_path.read_bytes(), meta_path)
    assert encoding2 == "sog v2 (meta.json + webp)"
    assert_scene_equals(scene2, want)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_encoded_v2_round_trip(tmp_path, degree):
    """Our test encoder -> reader: positions within a 16-bit step of the log-transformed range, rotation
    components within half an 8-bit step, codebook attributes decode to the nearest entry."""
    scene = random_scene(300, degree, seed=degree)
    scene = GaussianScene(scene.means.clamp(-50, 50), *scene.tensors()[1:])
    files, meta = encode_sog_v2(scene)
    path = tmp_path / "r.sog"
    path.write_bytes(bundle(files, meta))
    back, _, warnings = read_sog(path.read_bytes(), path)
    assert warnings == [] and back.sh_degree == degree
    lt = log_transform(scene.means.double().numpy())
    step = (np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])) / 65535
    assert np.all(np.abs(log_transform(back.means.double().numpy()) - lt) <= step * 0.5 + 1e-6)
    q = scene.unit_quats().double()
    dot = (back.quats.double() * q).sum(1).abs()
    assert float(dot.min()) > 1 - 1e-4
    for name in ("log_scales", "sh_dc"):
        cb = np.array(meta["scales" if name == "log_scales" else "sh0"]["codebook"])
        src = getattr(scene, name).double().numpy()
        nearest = np.abs(src[..., None] - cb).min(-1)
        assert np.all(np.abs(getattr(back, name).double().numpy() - src) <= nearest + 1e-6), name
    alpha = torch.sigmoid(scene.opacity_logits.double()).clamp(1e-6, 1 - 1e-6)
    assert float((torch.sigmoid(back.opacity_logits.double()) - alpha).abs().max()) <= 0.5 / 255 + 1e-6


# -- version 1 ----------------------------------------------------------------------------------------------
def hand_built_v1() -> tuple[dict[str, bytes], dict]:
    """Five splats, SH degree 2, the legacy layout (no version; linear mins/maxs, logit opacity)."""
    n = 5
    rng = np.random.default_rng(3)
    files = {
        "means_l.webp": image(rng.integers(0, 256, (n, 3)).astype(np.uint8), n),
        "means_u.webp": image(rng.integers(0, 256, (n, 3)).astype(np.uint8), n),
        "quats.webp": image(np.concatenate([rng.integers(0, 256, (n, 3)), rng.integers(252, 256, (n, 1))], 1)
                            .astype(np.uint8), n),
        "scales.webp": image(rng.integers(0, 256, (n, 3)).astype(np.uint8), n),
        "sh0.webp": image(rng.integers(0, 256, (n, 4)).astype(np.uint8), n),
    }
    cen = rng.integers(0, 256, (2, 64 * 8, 4)).astype(np.uint8)
    cen[..., 3] = 255
    labels = np.array([[0, 0, 0], [5, 0, 0], [64, 0, 0], [127, 0, 0], [3, 0, 0]], np.uint8)
    files["shN_centroids.webp"] = webp_bytes(cen)
    files["shN_labels.webp"] = image(labels, n)
    meta = {
        "means": {"shape": [n, 3], "mins": [-1.0, -2.0, 0.5], "maxs": [1.0, 2.0, 1.5],
                  "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"shape": [n, 3], "mins": [-7.0, -6.0, -5.0], "maxs": [-1.0, -2.0, 0.0], "files": ["scales.webp"]},
        "quats": {"shape": [n, 4], "files": ["quats.webp"]},
        "sh0": {"shape": [n, 4], "mins": [-2.0, -1.5, -1.0, -6.0], "maxs": [2.0, 1.5, 1.0, 6.0], "files": ["sh0.webp"]},
        "shN": {"shape": [128, 24], "mins": -0.75, "maxs": 0.5, "quantization": 8,
                "files": ["shN_centroids.webp", "shN_labels.webp"]},
    }
    return files, meta


def test_v1_reads_as_documented(tmp_path):
    files, meta = hand_built_v1()
    meta_path = write_folder(tmp_path / "v1", files, meta)
    scene, encoding, warnings = read_sog(meta_path.read_bytes(), meta_path)
    assert (encoding, warnings, scene.sh_degree, scene.num_gaussians) == ("sog v1 (meta.json + webp)", [], 2, 5)
    sh0 = np.asarray(Image.open(io.BytesIO(files["sh0.webp"])).convert("RGBA")).reshape(-1, 4)[:5]
    lo, hi = np.array(meta["sh0"]["mins"]), np.array(meta["sh0"]["maxs"])
    want = (lo + (hi - lo) * (sh0 / 255)).astype(np.float32)
    np.testing.assert_array_equal(scene.sh_dc.numpy(), want[:, :3])
    np.testing.assert_array_equal(scene.opacity_logits.numpy(), want[:, 3])
    cen = np.asarray(Image.open(io.BytesIO(files["shN_centroids.webp"])).convert("RGBA"))
    label = 64 + 0  # splat 2: palette entry 64 = row 1, column 0
    want_sh = (-0.75 + 1.25 * cen[1, 0:8, :3] / 255).astype(np.float32)
    np.testing.assert_array_equal(scene.sh_rest[2].numpy(), want_sh, err_msg=f"label {label}")


# -- splat-transform --------------------------------------------------------------------------------------------
def test_v1_matches_splat_transform(tmp_path, splat_transform_cli):
    """splat-transform still reads version 1 (read-sog-v1.ts): its decode of our hand-built v1 = ours."""
    files, meta = hand_built_v1()
    meta_path = write_folder(tmp_path / "v1", files, meta)
    ours, _, _ = read_sog(meta_path.read_bytes(), meta_path)
    out = tmp_path / "v1.ply"
    splat_transform(splat_transform_cli, meta_path, out)
    for name, want in ply_columns(out).items():
        np.testing.assert_array_equal(getattr(ours, name).numpy(), want, err_msg=name)


def test_hand_built_v2_matches_splat_transform(tmp_path, splat_transform_cli):
    files, meta, _ = hand_built_v2()
    sog = tmp_path / "hand.sog"
    sog.write_bytes(bundle(files, meta))
    ours, _, _ = read_sog(sog.read_bytes(), sog)
    out = tmp_path / "hand.ply"
    splat_transform(splat_transform_cli, sog, out)
    for name, want in ply_columns(out).items():
        np.testing.assert_array_equal(getattr(ours, name).numpy(), want, err_msg=name)


def _sources(tmp_path):
    synthetic = tmp_path / "synthetic-sh3.ply"
    s = random_scene(3000, 3, seed=31)
    write_ply(GaussianScene(s.means.clamp(-40, 40), *s.tensors()[1:]), synthetic)
    out = [("donut", DONUT), ("synthetic-sh3", synthetic)]
    try:
        out.append(("sh3-capture", shared_path("scenes", "sh3-capture.ply")))
    except pytest.skip.Exception:
        logger.info("sh3-capture.ply not available; SH-3 SOG checked on the synthetic scene only")
    return out


def test_splat_transform_sog_read_by_us(tmp_path, splat_transform_cli):
    """splat-transform writes .sog (and meta.json + WebP) from a PLY: our decode equals its own decode
    (``.sog -> .ply``) bit for bit, and the source PLY (in splat-transform's Morton order, ``-m``) within
    SOG's quantisation: positions within one 16-bit step of the log range, log-scales and f_dc the nearest
    codebook entry, opacity within one alpha byte (the writer truncates), each stored rotation component
    within one 8-bit step (sqrt(2)/255); higher SH (k-means palette) only reported."""
    for name, src in _sources(tmp_path):
        sog = tmp_path / f"{name}.sog"
        splat_transform(splat_transform_cli, src, sog, "-g", "cpu")
        ours, encoding, warnings = read_sog(sog.read_bytes(), sog)
        assert encoding == "sog v2 (bundled)" and warnings == []
        decoded = tmp_path / f"{name}.sog.ply"
        splat_transform(splat_transform_cli, sog, decoded)
        for field, want in ply_columns(decoded).items():
            np.testing.assert_array_equal(getattr(ours, field).numpy(), want, err_msg=f"{name} {field}")

        meta = json.loads(zipfile.ZipFile(sog).read("meta.json"))
        morton = tmp_path / f"{name}.morton.ply"
        subprocess.run([shutil.which("node") or "node", str(splat_transform_cli), "-q", "-w", str(src), "-m",
                        str(morton)], check=True, capture_output=True, timeout=120)
        ref = read_scene(morton)
        errs = {}
        lt = log_transform(ref.means.double().numpy())
        step = (np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])) / 65535
        # the writer truncates to 16 bits (one step); float32 rounding of the decoded value adds < 1.2e-7
        err_log = np.abs(log_transform(ours.means.double().numpy()) - lt)
        errs["means_log_steps"] = float((err_log / step).max())
        assert bool(np.all(err_log <= step + 1.2e-7)), name
        # splat-transform's WebP encoder drops the colour under alpha 0: splats whose opacity byte is 0
        # (invisible) come back with f_dc = codebook[0]; the others decode to the nearest entry
        visible = (torch.sigmoid(ref.opacity_logits.double()) * 255 >= 1).numpy()
        errs["invisible_splats"] = int((~visible).sum())
        for field, key in (("log_scales", "scales"), ("sh_dc", "sh0")):
            cb = np.array(meta[key]["codebook"], np.float32).astype(np.float64)
            srcv, got = getattr(ref, field).double().numpy(), getattr(ours, field).double().numpy()
            rows = visible if field == "sh_dc" else slice(None)
            excess = np.abs(got - srcv) - np.abs(srcv[..., None] - cb).min(-1)
            errs[field] = float(np.abs(got - srcv)[rows].max())
            assert float(excess[rows].max()) <= 1e-5, f"{name} {field} is not the nearest codebook entry"
        alpha = torch.sigmoid(ref.opacity_logits.double()).clamp(1e-6, 1 - 1e-6)
        errs["alpha"] = float((torch.sigmoid(ours.opacity_logits.double()) - alpha).abs().max())
        assert errs["alpha"] <= 1 / 255 + 1e-6, name
        q = ref.unit_quats().double()
        q = q * torch.where((ours.quats.double() * q).sum(1, keepdim=True) < 0, -1.0, 1.0)
        err = (ours.quats.double() - q).abs().scatter(1, q.abs().argmax(1, keepdim=True), 0.0)
        errs["quat_stored"] = float(err.max())
        assert errs["quat_stored"] <= math.sqrt(2) / 255 + 1e-6, name
        if ref.sh_rest.shape[1]:
            errs["sh_rest_max"] = float((ours.sh_rest - ref.sh_rest).abs().max())
            errs["sh_rest_rms"] = float((ours.sh_rest - ref.sh_rest).pow(2).mean().sqrt())
        logger.info("%s: splat-transform SOG vs source PLY, errors %s", name, errs)


def test_splat_transform_unbundled_read_by_us(tmp_path, splat_transform_cli):
    meta_path = tmp_path / "unb" / "meta.json"
    meta_path.parent.mkdir()
    splat_transform(splat_transform_cli, DONUT, meta_path, "-g", "cpu")
    ours, encoding, _ = read_sog(meta_path.read_bytes(), meta_path)
    assert encoding == "sog v2 (meta.json + webp)"
    decoded = tmp_path / "unb.ply"
    splat_transform(splat_transform_cli, meta_path, decoded)
    for field, want in ply_columns(decoded).items():
        np.testing.assert_array_equal(getattr(ours, field).numpy(), want, err_msg=field)


# -- malformed files and bombs -----------------------------------------------------------------------------
def _set_zip_sizes(data: bytes, name: str, file_size: int) -> bytes:
    """Rewrite the uncompressed size of member ``name`` in its local header and central directory entry."""
    out = bytearray(data)
    enc = name.encode()
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        pos = out.find(sig)
        while pos >= 0:
            n = struct.unpack_from("<H", out, pos + name_len_at)[0]
            if out[pos + name_at : pos + name_at + n] == enc:
                struct.pack_into("<I", out, pos + size_at, file_size)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def test_malformed_sog(tmp_path):
    files, meta, _ = hand_built_v2()
    path = tmp_path / "bad.sog"

    def raises(data: bytes, fragment: str) -> None:
        with pytest.raises(InputFileError, match=fragment) as info:
            read_sog(data, path)
        assert str(info.value).startswith(str(path))

    def with_meta(**changes) -> bytes:
        m = json.loads(json.dumps(meta))
        for dotted, value in changes.items():
            *parents, key = dotted.split("__")
            d = m
            for p in parents:
                d = d[p]
            if value is None:
                del d[key]
            else:
                d[key] = value
        return bundle(files, m)

    raises(b"", "empty")
    raises(b"GIF89a....", "not a SOG file")
    raises(b"PK\x03\x04 broken zip", "not a readable .sog bundle")
    raises(bundle(files, meta).replace(b"meta.json", b"mota.json"), "no member 'meta.json'")
    raises(with_meta(version=3), "SOG version 3 is not supported")
    raises(with_meta(version=None), "not the version 1 layout")
    raises(with_meta(count=17), "16 texels, fewer than the 17")
    raises(with_meta(count="3"), "'count' is '3'")
    raises(with_meta(count=2_000_000), "implausibly many")
    raises(with_meta(count=20_000_000), "limit of 10,000,000")
    raises(with_meta(scales__codebook=[0.0] * 255), "'scales.codebook' has 255 entries")
    raises(with_meta(sh0__codebook=[0.0] * 255 + ["x"]), "holds something other than numbers")
    raises(with_meta(means__mins=[0, 0]), "'means.mins' has 2 entries")
    raises(with_meta(means__files=["means_l.webp"]), "should list 2 image file names")
    raises(with_meta(quats__files=["../quats.webp"]), "not a plain relative file name")
    raises(with_meta(quats__files=["missing.webp"]), "no member 'missing.webp'")
    raises(with_meta(shN__bands=7), "'shN.bands' is 7")
    raises(with_meta(shN__count=0), "'shN.count' is 0")
    raises(with_meta(means__maxs=[2.0, 0.0, 800.0]), "non-finite values in means")
    raises(bundle(files, json.dumps(meta).replace('"count": 3', '"count": NaN')), "NaN, which JSON does not allow")
    raises(bundle({**files, "scales.webp": b"RIFF\0\0\0\0WEBPjunk"}, meta), "'scales.webp' cannot be decoded")
    png = io.BytesIO()
    Image.new("RGBA", (4, 4)).save(png, "PNG")
    raises(bundle({**files, "sh0.webp": png.getvalue()}, meta), "'sh0.webp' is not a WebP file")
    raises(bundle({**files, "quats.webp": webp_bytes(np.zeros((300, 300, 4), np.uint8))}, meta),
           "90,000 texels, far more .* decompression bomb")
    raises(bundle({**files, "shN_centroids.webp": webp_bytes(np.zeros((1, 100, 4), np.uint8))}, meta),
           "'shN_centroids.webp' is 100 wide; expected 192")
    raises(bundle(files, meta)[:-30], "not a readable .sog bundle")


def test_zip_bombs_are_refused(tmp_path):
    files, meta, _ = hand_built_v2()
    path = tmp_path / "bomb.sog"
    # a deflated member that inflates to 64 MiB (the image could need about 1.5 MiB)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, bytes(64 << 20) if name == "sh0.webp" else data)
        zf.writestr("meta.json", json.dumps(meta))
    data = buf.getvalue()
    assert len(data) < 200_000
    with pytest.raises(InputFileError, match="'sh0.webp' says 67,108,864 bytes, more than .* zip bomb"):
        read_sog(data, path)
    # the same member lying about its size: read stops at the declared size and the CRC fails
    lying = _set_zip_sizes(data, "sh0.webp", 1000)
    with pytest.raises(InputFileError, match="'sh0.webp' cannot be read"):
        read_sog(lying, path)
    # a stored member claiming more bytes than the file has
    stored = _set_zip_sizes(bundle(files, meta), "quats.webp", 10**6)
    with pytest.raises(InputFileError, match="quats.webp"):
        read_sog(stored, path)


def test_looks_like_sog(tmp_path):
    files, meta, _ = hand_built_v2()
    assert looks_like_sog(bundle(files, meta), tmp_path / "x.bin")
    assert looks_like_sog(b' {"version": 2}', tmp_path / "meta.json")
    assert looks_like_sog(b'{"version": 2}', tmp_path / "scene.meta.json")
    assert not looks_like_sog(b'{"version": 2}', tmp_path / "cameras.json")
    assert not looks_like_sog(b"PK\x03\x04 broken", tmp_path / "x.sog")
    assert not looks_like_sog(_zip_bytes({"other.txt": b"x"}), tmp_path / "x.zip")
    assert not looks_like_sog(b"ply\n", tmp_path / "meta.json")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_empty_scene(tmp_path):
    files, meta, _ = hand_built_v2()
    scene, _, warnings = read_sog(bundle(files, {**meta, "count": 0}), tmp_path / "empty.sog")
    assert scene.num_gaussians == 0 and scene.sh_degree == 1 and warnings == ["the file holds no splats"]


def test_lossy_webp_and_unused_members_warn(tmp_path):
    files, meta, _ = hand_built_v2()
    lossy = io.BytesIO()
    Image.open(io.BytesIO(files["scales.webp"])).save(lossy, "WEBP", lossless=False, quality=100)
    files = {**files, "scales.webp": lossy.getvalue(), "notes.txt": b"hello"}
    scene, _, warnings = read_sog(bundle(files, meta), tmp_path / "w.sog")
    assert "image 'scales.webp' is lossy WebP: SOG expects lossless, so values are approximate" in warnings
    assert "bundle members not used: notes.txt" in warnings
    assert scene.num_gaussians == 3


def test_missing_image_beside_meta_json(tmp_path):
    files, meta, _ = hand_built_v2()
    meta_path = write_folder(tmp_path / "u", files, meta)
    (tmp_path / "u" / "quats.webp").unlink()
    with pytest.raises(InputFileError, match="image 'quats.webp' beside meta.json: file not found"):
        read_sog(meta_path.read_bytes(), meta_path)


def test_a_zip_asking_for_a_newer_zip_version_is_a_clean_error(tmp_path):
    """Python's zipfile raises NotImplementedError for an entry whose 'version needed to extract' it does not know
    (found by the interop fuzz, seed 1431193500: 'zip file version 14.8' escaped as an internal error)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meta.json", json.dumps({"version": 2, "count": 1}))
    data = bytearray(buf.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 148  # version needed to extract: 14.8
    path = tmp_path / "newer.sog"
    path.write_bytes(bytes(data))
    assert looks_like_sog(bytes(data), path) is False  # never raises
    with pytest.raises(InputFileError, match="zip file version 14.8"):
        read_sog(bytes(data), path)
