"""graphdeco .ply reading and writing: real scenes (cross-checked with plyfile), round trips, PLY variants."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import plyfile
import pytest

from core.errors import InputFileError
import torch

from core.io import SceneFileInfo, atomic_write, read_scene, read_scene_with_info, write_ply
from core.scene import GaussianScene
from tests.conftest import shared_path

SCENE_FIELDS = GaussianScene.field_names()


def random_scene(n: int = 50, degree: int = 1, seed: int = 0) -> GaussianScene:
    """A scene with random values, including awkward floats (-0.0, subnormals, extremes)."""
    g = torch.Generator().manual_seed(seed)
    m = {0: 0, 1: 3, 2: 8, 3: 15}[degree]
    scene = GaussianScene(
        means=torch.randn(n, 3, generator=g) * 10,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 4,
        opacity_logits=torch.randn(n, generator=g) * 3,
        sh_dc=torch.randn(n, 3, generator=g),
        sh_rest=torch.randn(n, m, 3, generator=g) * 0.1,
    )
    if n >= 4:
        scene.means[0, 0] = -0.0
        scene.means[1, 1] = 1e-45  # smallest subnormal
        scene.means[2, 2] = torch.finfo(torch.float32).max
        scene.opacity_logits[3] = 0.1  # not exactly representable
    return scene


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def assert_bit_identical(a: GaussianScene, b: GaussianScene) -> None:
    for name in SCENE_FIELDS:
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.shape == tb.shape, name
        assert tb.dtype == torch.float32 and tb.device.type == "cpu", name
        assert torch.equal(bits(ta), bits(tb)), f"{name} differs"


def plyfile_columns(path: Path) -> dict[str, np.ndarray]:
    """The vertex element read by plyfile (an independent PLY parser)."""
    v = plyfile.PlyData.read(str(path))["vertex"].data
    return {name: np.asarray(v[name]) for name in v.dtype.names}


def assert_matches_plyfile(scene: GaussianScene, cols: dict[str, np.ndarray]) -> None:
    n, m = scene.num_gaussians, scene.sh_rest.shape[1]
    stack = lambda names: np.stack([cols[k] for k in names], axis=1).astype(np.float32)
    expected = {
        "means": stack(["x", "y", "z"]),
        "quats": stack([f"rot_{i}" for i in range(4)]),
        "log_scales": stack([f"scale_{i}" for i in range(3)]),
        "opacity_logits": cols["opacity"].astype(np.float32),
        "sh_dc": stack([f"f_dc_{i}" for i in range(3)]),
        # f_rest is channel-major: f_rest_{c*M+k} = sh_rest[:, k, c]
        "sh_rest": np.stack(
            [np.stack([cols[f"f_rest_{c * m + k}"] for c in range(3)], axis=1) for k in range(m)], axis=1
        ).astype(np.float32) if m else np.zeros((n, 0, 3), np.float32),
    }
    for name, want in expected.items():
        got = getattr(scene, name).numpy()
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=name)


# -- real scenes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, n, degree",
    [("donut.ply", 45_624, 0), ("sh3-capture.ply", 9_080, 3)],
)
def test_real_scene_matches_plyfile(name, n, degree):
    path = shared_path("scenes", name)
    scene, info = read_scene_with_info(path)
    assert info == SceneFileInfo(
        path=path, format="ply", bytes=path.stat().st_size, n_gaussians=n, sh_degree=degree,
        warnings=[], encoding="binary_little_endian",
    )
    assert scene.num_gaussians == n and scene.sh_degree == degree
    assert_matches_plyfile(scene, plyfile_columns(path))
    assert not scene.non_finite_fields()


def test_truncated_sh3_honours_declared_count_and_warns():
    path = shared_path("scenes", "truncated-sh3.ply")
    scene, info = read_scene_with_info(path)
    assert info.n_gaussians == scene.num_gaussians == 100 and info.sh_degree == 3
    assert info.warnings == ["14029 trailing bytes after the declared data were ignored"]
    data = path.read_bytes()
    start = data.index(b"end_header\n") + len(b"end_header\n")
    raw = np.frombuffer(data, dtype="<f4", count=100 * 62, offset=start).reshape(100, 62)
    np.testing.assert_array_equal(scene.means.numpy(), raw[:, 0:3])
    np.testing.assert_array_equal(scene.quats.numpy(), raw[:, 58:62])
    np.testing.assert_array_equal(scene.sh_rest[:, 4, 2].numpy(), raw[:, 9 + 2 * 15 + 4])


def test_lego_reads_fast(caplog):
    path = shared_path("scenes", "lego-3dgs.ply")
    read_scene(path)  # warm the page cache
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="core.io"):
        scene, info = read_scene_with_info(path)
    elapsed = time.perf_counter() - start
    logging.getLogger(__name__).info("lego-3dgs.ply (%d bytes) read in %.3f s", info.bytes, elapsed)
    assert (info.n_gaussians, info.sh_degree) == (134_132, 3)
    assert scene.sh_rest.shape == (134_132, 15, 3)
    assert any("lego-3dgs.ply" in r.getMessage() for r in caplog.records)
    assert elapsed < 3.0, f"reading lego-3dgs.ply took {elapsed:.2f} s"


# -- round trips --------------------------------------------------------------------------------------
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("ascii", [False, True])
@pytest.mark.parametrize("normals", [True, False])
def test_write_read_round_trip_is_bit_identical(tmp_path, degree, ascii, normals):
    scene = random_scene(40, degree, seed=degree)
    path = tmp_path / "scene.ply"
    write_ply(scene, path, ascii=ascii, include_normals=normals)
    back, info = read_scene_with_info(path)
    assert_bit_identical(scene, back)
    assert info.encoding == ("ascii" if ascii else "binary_little_endian")
    assert info.warnings == [] and info.sh_degree == degree
    names = [p.name for p in plyfile.PlyData.read(str(path))["vertex"].properties]
    m = 3 * {0: 0, 1: 3, 2: 8, 3: 15}[degree]
    assert names == (
        ["x", "y", "z"] + (["nx", "ny", "nz"] if normals else []) + ["f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(m)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )
    assert_matches_plyfile(scene, plyfile_columns(path))


def test_real_scene_round_trip(tmp_path):
    scene = read_scene(shared_path("scenes", "sh3-capture.ply"))
    write_ply(scene, tmp_path / "copy.ply")
    assert_bit_identical(scene, read_scene(tmp_path / "copy.ply"))


def test_write_accepts_grad_tensors_and_empty_scene(tmp_path):
    scene = random_scene(5, 2)
    grad = GaussianScene(*(t.clone().requires_grad_(True) for t in scene.tensors()))
    write_ply(grad, tmp_path / "g.ply")
    assert_bit_identical(scene, read_scene(tmp_path / "g.ply"))
    empty = scene.subset(torch.zeros(5, dtype=torch.bool))
    write_ply(empty, tmp_path / "e.ply", ascii=True)
    assert "element vertex 0" in (tmp_path / "e.ply").read_text()
    with pytest.raises(InputFileError, match="holds no Gaussians"):  # nothing to show: refused when read back
        read_scene(tmp_path / "e.ply")


def test_write_refuses_to_replace_unless_overwrite(tmp_path):
    path = tmp_path / "scene.ply"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        write_ply(random_scene(3, 0), path)
    assert path.read_bytes() == b"precious"
    write_ply(random_scene(3, 0), path, overwrite=True)
    assert read_scene(path).num_gaussians == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]


# -- atomic_write -------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_leaves_nothing_on_failure(tmp_path, exc):
    target = tmp_path / "out.bin"
    with pytest.raises(exc):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise exc()
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_write(target, overwrite=True) as f:
            f.write(b"new")
            raise exc()
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_atomic_write_success_permissions_and_errors(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"abc")
    assert target.read_bytes() == b"abc"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileExistsError):
        with atomic_write(target) as f:
            f.write(b"x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "out.bin") as f:
            pass
    # the target appearing while we write is still refused (no clobbering)
    late = tmp_path / "late.bin"
    with pytest.raises(FileExistsError):
        with atomic_write(late) as f:
            late.write_bytes(b"someone else")
            f.write(b"mine")
    assert late.read_bytes() == b"someone else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.bin", "out.bin"]


# -- PLY variants -------------------------------------------------------------------------------------
def vertex_array(scene: GaussianScene, types: dict[str, str] | None = None, extra=()) -> np.ndarray:
    """A structured vertex array in graphdeco layout; ``types`` overrides numpy types per property."""
    from core.io.ply import graphdeco_table

    names, table = graphdeco_table(scene, include_normals=False)
    types = types or {}
    fields = [(n, types.get(n, "f4")) for n in names]
    for i, (name, t, _) in enumerate(extra):
        fields.insert(3 + i, (name, t))  # extras in the middle of the record
    arr = np.zeros(len(table), dtype=fields)
    for j, n in enumerate(names):
        arr[n] = table[:, j]
    for name, _, values in extra:
        arr[name] = values
    return arr


@pytest.mark.parametrize("fmt", ["<", ">", "ascii"])
def test_other_numeric_types_are_converted(tmp_path, fmt):
    scene = random_scene(20, 1, seed=3)
    types = {"x": "f8", "y": "i4", "opacity": "u1", "rot_0": "i2", "f_rest_4": "f8"}
    arr = vertex_array(scene, types)
    path = tmp_path / "typed.ply"
    el = plyfile.PlyElement.describe(arr, "vertex")
    plyfile.PlyData([el], text=fmt == "ascii", byte_order=fmt if fmt != "ascii" else "=").write(str(path))
    back, info = read_scene_with_info(path)
    assert info.encoding == {"<": "binary_little_endian", ">": "binary_big_endian", "ascii": "ascii"}[fmt]
    assert info.warnings == ["vertex properties of type double, int, short, uchar were converted to float32"]
    np.testing.assert_array_equal(back.means[:, 0].numpy(), arr["x"].astype(np.float32))
    np.testing.assert_array_equal(back.means[:, 1].numpy(), arr["y"].astype(np.float32))
    np.testing.assert_array_equal(back.opacity_logits.numpy(), arr["opacity"].astype(np.float32))
    np.testing.assert_array_equal(back.quats[:, 0].numpy(), arr["rot_0"].astype(np.float32))
    np.testing.assert_array_equal(back.sh_rest[:, 1, 1].numpy(), arr["f_rest_4"].astype(np.float32))
    assert torch.equal(back.log_scales, scene.log_scales) and torch.equal(back.sh_dc, scene.sh_dc)


def test_big_endian_float_file_is_bit_identical(tmp_path):
    scene = random_scene(30, 3, seed=4)
    path = tmp_path / "be.ply"
    el = plyfile.PlyElement.describe(vertex_array(scene), "vertex")
    plyfile.PlyData([el], byte_order=">").write(str(path))
    back, info = read_scene_with_info(path)
    assert info.encoding == "binary_big_endian" and info.warnings == []
    assert_bit_identical(scene, back)


def test_unknown_properties_are_ignored_with_a_warning(tmp_path):
    scene = random_scene(10, 0)
    extra = [("red", "u1", np.arange(10)), ("semantic_id", "f8", np.linspace(0, 1, 10))]
    path = tmp_path / "extra.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(vertex_array(scene, extra=extra), "vertex")]).write(str(path))
    back, info = read_scene_with_info(path)
    assert info.warnings == ["ignored unknown vertex properties: red, semantic_id"]
    assert_bit_identical(scene, back)


def faces(n: int) -> plyfile.PlyElement:
    f = np.empty(n, dtype=[("vertex_indices", "O"), ("flag", "u1")])
    f["vertex_indices"] = [np.arange(3 + i % 3, dtype=np.int32) for i in range(n)]
    f["flag"] = 7
    return plyfile.PlyElement.describe(f, "face", len_types={"vertex_indices": "u1"},
                                       val_types={"vertex_indices": "i4"})


@pytest.mark.parametrize("text", [False, True])
def test_elements_after_vertices_are_skipped(tmp_path, text):
    scene = random_scene(12, 2)
    camera = np.array([(1.0, 2.0), (3.0, 4.0)], dtype=[("fx", "f4"), ("fy", "f4")])
    elements = [plyfile.PlyElement.describe(vertex_array(scene), "vertex"), faces(5),
                plyfile.PlyElement.describe(camera, "camera")]
    path = tmp_path / "mesh.ply"
    plyfile.PlyData(elements, text=text).write(str(path))
    back, info = read_scene_with_info(path)
    assert_bit_identical(scene, back)
    assert info.warnings == ["ignored PLY elements: face, camera"]


def test_fixed_size_elements_before_vertices_are_skipped(tmp_path):
    scene = random_scene(12, 1)
    camera = np.array([(1.0, 2, 3)] * 3, dtype=[("fx", "f8"), ("w", "u2"), ("h", "i1")])
    elements = [plyfile.PlyElement.describe(camera, "camera"),
                plyfile.PlyElement.describe(vertex_array(scene), "vertex")]
    path = tmp_path / "cam_first.ply"
    plyfile.PlyData(elements, byte_order=">").write(str(path))
    back, info = read_scene_with_info(path)
    assert_bit_identical(scene, back)
    assert info.warnings == ["ignored PLY elements: camera"]


@pytest.mark.parametrize("text", [False, True])
def test_list_elements_before_vertices(tmp_path, text):
    """ascii can walk a list element; binary cannot locate the vertices and says so."""
    scene = random_scene(6, 0)
    path = tmp_path / "faces_first.ply"
    plyfile.PlyData([faces(4), plyfile.PlyElement.describe(vertex_array(scene), "vertex")], text=text).write(str(path))
    if text:
        assert_bit_identical(scene, read_scene(path))
    else:
        from core.errors import InputFileError

        with pytest.raises(InputFileError, match="element 'face' has variable-size.*'vertex_indices' is a list"):
            read_scene(path)


def test_declared_count_smaller_than_data_is_honoured(tmp_path):
    scene = random_scene(10, 1)
    path = tmp_path / "s.ply"
    write_ply(scene, path)
    data = path.read_bytes().replace(b"element vertex 10\n", b"element vertex 7\n")
    path.write_bytes(data)
    back, info = read_scene_with_info(path)
    assert_bit_identical(scene.subset(torch.arange(7)), back)
    assert info.warnings == [f"{3 * 4 * (6 + 3 + 9 + 8)} trailing bytes after the declared data were ignored"]


def test_crlf_header_and_comments(tmp_path):
    scene = random_scene(4, 0)
    path = tmp_path / "crlf.ply"
    write_ply(scene, path, include_normals=False)
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    head = head.replace(b"\n", b"\r\n").replace(b"ply\r\n", b"ply\r\ncomment made on windows\r\nobj_info x\r\n", 1)
    path.write_bytes(head + b"end_header\r\n" + body)
    assert_bit_identical(scene, read_scene(path))
