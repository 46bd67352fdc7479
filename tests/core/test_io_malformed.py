"""Malformed scene files: one clear InputFileError naming the file and the problem, never anything else."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputFileError
from core.io import read_scene, write_ply
from tests.core.test_io_ply import random_scene

PROPS_SH0 = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def ply_bytes(props=PROPS_SH0, count=3, body=None, fmt="binary_little_endian", types=None, header_end="end_header\n"):
    """A PLY with ``property float`` lines for ``props`` (``types`` overrides the type text)."""
    types = types or {}
    head = f"ply\nformat {fmt} 1.0\nelement vertex {count}\n"
    head += "".join(f"property {types.get(p, 'float')} {p}\n" for p in props) + header_end
    if body is None:
        body = np.arange(count * len(props), dtype="<f4").tobytes() if fmt != "ascii" else b"1 " * count * len(props)
    return head.encode() + body


def expect_error(tmp_path: Path, data: bytes, *fragments: str, name: str = "bad.ply") -> InputFileError:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputFileError) as info:
        read_scene(path)
    err = info.value
    assert err.path == path and str(err).startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in err.problem, f"{fragment!r} not in {err.problem!r}"
    assert not err.problem.startswith("unexpected"), err.problem
    return err


def test_valid_baseline(tmp_path):
    path = tmp_path / "ok.ply"
    path.write_bytes(ply_bytes())
    assert read_scene(path).num_gaussians == 3


@pytest.mark.parametrize("missing", [["opacity"], ["rot_3"], ["f_dc_1", "scale_2"]])
def test_missing_properties(tmp_path, missing):
    props = [p for p in PROPS_SH0 if p not in missing]
    expect_error(tmp_path, ply_bytes(props), "lacks " + ", ".join(missing))


def test_plain_point_cloud_is_not_a_splat(tmp_path):
    expect_error(tmp_path, ply_bytes(["x", "y", "z", "red", "green", "blue"]), "not a 3D Gaussian splat PLY")


def test_list_property_for_x(tmp_path):
    data = ply_bytes(types={"x": "list uchar float"})
    expect_error(tmp_path, data, "'x' is a list property (list uchar float), expected a number")


def test_non_numeric_type_name(tmp_path):
    expect_error(tmp_path, ply_bytes(types={"opacity": "string"}),
                 "'opacity' has type 'string', which is not a numeric")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_nan_and_inf_values_name_attribute_and_count(tmp_path, fmt):
    values = np.ones((4, len(PROPS_SH0)), dtype="<f4")
    values[1, PROPS_SH0.index("opacity")] = np.nan
    values[2, PROPS_SH0.index("opacity")] = np.inf
    values[3, PROPS_SH0.index("y")] = -np.inf
    body = values.tobytes() if fmt != "ascii" else "\n".join(" ".join(map(str, r)) for r in values).encode()
    expect_error(tmp_path, ply_bytes(count=4, body=body, fmt=fmt), "non-finite (NaN/Inf) values in y (1), opacity (2)")


def test_double_overflowing_float32_counts_as_inf(tmp_path):
    props = PROPS_SH0
    dt = [(p, "<f8" if p == "z" else "<f4") for p in props]
    arr = np.ones(2, dtype=dt)
    arr["z"][1] = 1e300
    expect_error(tmp_path, ply_bytes(count=2, body=arr.tobytes(), types={"z": "double"}), "z (1)")


def test_file_cut_in_half(tmp_path):
    scene_path = tmp_path / "whole.ply"
    write_ply(random_scene(100, 3), scene_path)
    data = scene_path.read_bytes()
    half = data[: len(data) // 2]
    header_len = data.index(b"end_header\n") + len(b"end_header\n")
    err = expect_error(tmp_path, half, "truncated", "100 'vertex' records of 248 bytes (24800 bytes)")
    assert f"only {len(half) - header_len} bytes" in err.problem


def test_ascii_file_cut_short(tmp_path):
    expect_error(tmp_path, ply_bytes(count=5, fmt="ascii", body=b"1 2 3\n"),
                 "truncated", "5 'vertex' records", "3 values")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "looks like a PNG image"),
        (b"hello world, this is just some text\n" * 20, "does not start with the line 'ply'"),
        (bytes(random.Random(1).randrange(256) for _ in range(4096)), "not a PLY file"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n" + bytes(500), "no 'end_header'"),
        (b"ply\n", "no 'end_header'"),
    ],
    ids=["empty", "png", "text", "random-bytes", "no-end-header", "only-magic"],
)
def test_not_a_ply(tmp_path, data, fragment):
    expect_error(tmp_path, data, fragment)


@pytest.mark.parametrize(
    "count, fragments",
    [
        ("-5", ["negative count (-5)"]),
        ("12abc", ["non-integer count '12abc'"]),
        (str(10**15), ["truncated", f"declares {10**15} 'vertex' records", "only 168 bytes"]),
        (str(2**64 + 1), ["truncated"]),
    ],
)
def test_negative_or_absurd_vertex_count(tmp_path, count, fragments):
    data = ply_bytes(count=3).replace(b"element vertex 3", f"element vertex {count}".encode())
    expect_error(tmp_path, data, *fragments)


def test_absurd_count_in_ascii(tmp_path):
    data = ply_bytes(count=3, fmt="ascii").replace(b"element vertex 3", f"element vertex {10**12}".encode())
    expect_error(tmp_path, data, "truncated")


@pytest.mark.parametrize("n_rest", [1, 10, 44, 46])
def test_f_rest_count_must_be_0_9_24_45(tmp_path, n_rest):
    props = PROPS_SH0[:6] + [f"f_rest_{i}" for i in range(n_rest)] + PROPS_SH0[6:]
    expect_error(tmp_path, ply_bytes(props),
                 f"has {n_rest} f_rest properties; expected f_rest_0.. numbered 0, 9, 24 or 45")


def test_f_rest_numbering_gap(tmp_path):
    props = PROPS_SH0 + [f"f_rest_{i}" for i in range(8)] + ["f_rest_9"]
    expect_error(tmp_path, ply_bytes(props), "has 9 f_rest properties")


@pytest.mark.parametrize(
    "header, fragment",
    [
        ("ply\nformat binary_middle_endian 1.0\nend_header\n", "unsupported PLY format line 2"),
        ("ply\nelement vertex 1\nproperty float x\nend_header\n", "no 'format' line"),
        ("ply\nformat ascii 1.0\nproperty float x\nend_header\n", "property before any element"),
        ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float x\nend_header\n", "declared twice"),
        ("ply\nformat ascii 1.0\nelement vertex 1\nelement vertex 1\nend_header\n", "element 'vertex' twice"),
        ("ply\nformat ascii 1.0\nelement vertex\nend_header\n", "line 3 is malformed"),
        ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float\nend_header\n", "line 4 is malformed"),
        ("ply\nformat ascii 1.0\nbanana split\nend_header\n", "line 3 is not a PLY header line"),
        ("ply\nformat ascii 1.0\nelement face 1\nproperty uchar n\nend_header\n1\n", "no 'vertex' element"),
    ],
)
def test_malformed_headers(tmp_path, header, fragment):
    expect_error(tmp_path, header.encode(), fragment)


def test_ascii_non_numeric_value(tmp_path):
    body = b"1 " * (3 * 14 - 1) + b"one\n"
    expect_error(tmp_path, ply_bytes(count=3, fmt="ascii", body=body), "non-numeric value")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_scene(tmp_path / "nope.ply")
    with pytest.raises(InputFileError, match="is a folder"):
        read_scene(tmp_path)


@pytest.mark.parametrize(
    "data, fragment",
    [(b"", "file is empty"), (bytes(33), "not a multiple of 32 bytes"),
     (np.array([np.nan, 0, 0, 1, 1, 1, 0], "<f4").tobytes() + bytes(4),
      "non-finite (NaN/Inf) values in position (1 splats)"),
     (np.array([0, 0, 0, 1, 0, 1, 0], "<f4").tobytes() + bytes(4), "1 splats have a zero or negative scale")],
)
def test_malformed_splat(tmp_path, data, fragment):
    expect_error(tmp_path, data, fragment, name="bad.splat")


# -- fuzzing: truncations and bit flips of small valid files ------------------------------------------
def _valid_files() -> dict[str, bytes]:
    from tests.core.test_io_compressed_ply import compressed_ply_bytes

    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, kw in {"bin": {}, "ascii": {"ascii": True}}.items():
            p = Path(d) / f"{name}.ply"
            write_ply(random_scene(4, 1, seed=5), p, include_normals=name == "bin", **kw)
            out[name] = p.read_bytes()
    out["compressed"] = compressed_ply_bytes(random_scene(5, 1, seed=6))
    return out


VALID = _valid_files()


def _read_mutated(data: bytes, suffix: str = ".ply") -> None:
    fd, name = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            scene = read_scene(name)
        except InputFileError as err:
            assert str(err).startswith(f"{name}: ")
            assert not err.problem.startswith("unexpected"), err.problem
        else:
            assert scene.means.dtype.is_floating_point
    finally:
        os.unlink(name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(VALID)),
    cut=st.none() | st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.booleans(), st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), max_size=4),
)
def test_fuzz_truncation_and_bit_flips_only_raise_input_file_error(kind, cut, flips):
    data = bytearray(VALID[kind])
    body = data.index(b"end_header\n") + len(b"end_header\n")
    for in_body, where, bit in flips:  # half the flips in the header, half in the data
        start = body if in_body else 0
        data[start + int(where * (len(data) - start))] ^= 1 << bit
    if cut is not None:
        data = data[: int(cut * len(data))]
    _read_mutated(bytes(data))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".ply", ".splat"]))
def test_fuzz_random_bytes(data, suffix):
    _read_mutated(data, suffix)
