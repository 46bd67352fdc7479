"""app.documents: loading, cluster rows and bytes, and the cluster display operations (no recompression)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.documents import compressed_from_model, display_scene, export_ngs, export_ply, load_any
from core.codec import is_ngs_file
from core.errors import InputFileError
from core.scene import SH_C0


@pytest.fixture(scope="module")
def model():
    """A small random NeuralGS model: 3 clusters of 40, 25, 10 Gaussians, SH degree 1."""
    from core.neural_field import ClusterField, FieldArch, NeuralGSModel, attribute_dim

    torch.manual_seed(0)
    arch = FieldArch(sh_degree=1, hidden=8, layers=3, pe_freqs=2)
    sizes = [40, 25, 10]
    n = sum(sizes)
    d = attribute_dim(1)
    pos = torch.rand(n, 3)
    lo = torch.full((d,), -1.0)
    hi = torch.full((d,), 1.0)
    lo[0], hi[0] = 1.0, 3.0  # opacity logits: clearly visible
    lo[1:4], hi[1:4] = -4.0, -3.0  # small scales
    return NeuralGSModel(arch, pos, sizes, [ClusterField(arch) for _ in sizes], pos.min(0).values,
                         pos.max(0).values, lo, hi)


@pytest.fixture(scope="module")
def cs(model):
    return compressed_from_model(model, n_bytes=1234)


def test_rows_count_and_bytes_match_the_file(model, cs, tmp_path):
    from core.codec import encode_ngs

    assert [r["count"] for r in cs.rows] == [40, 25, 10]
    assert all(r["importance"] is None and r["loss"] is None for r in cs.rows)
    n_file = len(encode_ngs(model))
    attributed = sum(r["bytes"] for r in cs.rows)
    assert attributed < n_file < attributed + 4096  # only the header and section framing are not attributed
    np.testing.assert_array_equal(np.bincount(cs.cluster_ids), [40, 25, 10])


def test_importance_shares_sum_to_one(model):
    from app.documents import cluster_rows

    imp = torch.zeros(75)
    imp[:40] = 1.0
    imp[40:65] = 3.0
    rows = cluster_rows(model, imp, {0: 0.5, 1: 0.25, 2: 0.125})
    shares = [r["importance"] for r in rows]
    assert shares == pytest.approx([40 / 115, 75 / 115, 0.0])
    assert [r["loss"] for r in rows] == [0.5, 0.25, 0.125]


def test_toggling_clusters_selects_their_gaussians_without_decoding(cs, monkeypatch):
    monkeypatch.setattr(cs.model, "decode", lambda *a, **k: pytest.fail("toggling must not decode again"))
    shown = display_scene(cs, np.array([True, False, True]))
    assert shown.num_gaussians == 50
    torch.testing.assert_close(shown.means, torch.cat([cs.scene.means[:40], cs.scene.means[65:]]))
    assert display_scene(cs, np.array([False, False, False])).num_gaussians == 0
    assert display_scene(cs).num_gaussians == 75


def test_colour_by_cluster_paints_each_cluster_its_palette_colour(cs):
    from widgets.palette import cluster_colors

    shown = display_scene(cs, color_by_cluster=True)
    rgb = shown.sh_dc * SH_C0 + 0.5
    torch.testing.assert_close(rgb[0], torch.tensor(cluster_colors(3)[0], dtype=torch.float32))
    torch.testing.assert_close(rgb[70], torch.tensor(cluster_colors(3)[2], dtype=torch.float32))
    assert shown.sh_rest.abs().max() == 0


def test_highlight_fades_the_other_clusters(cs):
    shown = display_scene(cs, highlight=1)
    op = torch.sigmoid(shown.opacity_logits)
    base = torch.sigmoid(cs.scene.opacity_logits)
    torch.testing.assert_close(op[40:65], base[40:65])
    torch.testing.assert_close(op[:40], base[:40] * 0.12, atol=1e-5, rtol=1e-4)
    assert (shown.sh_dc[:40].abs() <= cs.scene.sh_dc[:40].abs() + 1e-6).all()


def test_export_is_atomic_and_never_overwrites(cs, tmp_path):
    out = tmp_path / "x.ngs"
    n = export_ngs(cs, out)
    assert out.stat().st_size == n and is_ngs_file(out)
    with pytest.raises(FileExistsError):
        export_ngs(cs, out)
    export_ngs(cs, out, overwrite=True)
    ply = tmp_path / "x.ply"
    export_ply(cs, ply)
    back = load_any(ply)
    assert back.scene.num_gaussians == 75
    again = load_any(out)
    assert again.n_clusters == 3 and again.path == out and again.n_bytes == out.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ngs", "x.ply"]  # no temporary files left


@pytest.mark.parametrize("content, needle", [(b"ply\nformat binary_little_endian 1.0\nend_header\n", ""),
                                             (b"NGS\x00\x01\x00\x00\x00garbage", ""),
                                             (b"hello", "")])
def test_bad_files_raise_input_file_errors_naming_the_file(tmp_path, content, needle):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(content)
    with pytest.raises(InputFileError) as err:
        load_any(bad)
    assert str(bad) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_any(tmp_path / "nope.ply")


def test_cluster_bytes_are_the_files_sections(cs, tmp_path):
    """Each row's bytes: its section(s) in the codec's layout of the file, the same in memory and reopened."""
    from core.codec import read_ngs_header

    out = tmp_path / "x.ngs"
    export_ngs(cs, out)
    sections = {s["name"]: s["length"] for s in read_ngs_header(out)["sections"]}
    again = load_any(out)
    per_position = sections["positions"] // 75
    assert [r["bytes"] for r in again.rows] == [sections[f"mlp_{c}"] + per_position * n
                                                for c, n in enumerate([40, 25, 10])]
    assert [r["bytes"] for r in again.rows] == [r["bytes"] for r in cs.rows]


def test_an_opened_scene_carries_the_fingerprint_a_ngs_records(tmp_path):
    """Issue 14: the app and the command line record the same source for the same scene (CRC-32 of the means'
    little-endian float32 bytes, whatever format the scene came from)."""
    import zlib

    from core.io import read_scene, write_ply
    from core.pipeline.compress import means_fingerprint, source_meta
    from core.paths import DEMO_SCENE

    scene = read_scene(DEMO_SCENE).subset(torch.arange(0, 300))
    write_ply(scene, tmp_path / "s.ply")
    doc = load_any(tmp_path / "s.ply")
    expected = f"{zlib.crc32(scene.means.numpy().astype('<f4').tobytes()):08x}"
    assert doc.fingerprint == expected == means_fingerprint(scene.means)
    assert doc.source_meta() == source_meta("s.ply", doc.n_bytes, "ply", 300, expected)
    assert doc.source_meta()["means_crc32"] == expected and doc.source_meta()["n_gaussians"] == 300
    moved = scene.subset(torch.arange(0, 300))
    moved.means[0, 0] += 1e-3
    assert means_fingerprint(moved.means) != expected
