"""Regression tests for the holes an outside fuzzer found in the readers (issue 13, "Today's readers").

Each test feeds the minimal input that used to crash, hang or be accepted, and checks the general fix:
camera-file numbers and names are validated in one place (``core.cameras.camera_set``), messages are made
printable in one place (``core.errors.printable``), inputs are regular files read with a bound
(``core.io.input_file``), outputs are checked before the work and written by ``core.io.atomic``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.camera import MAX_IMAGE_SIDE, Camera, CameraValidationError
from core.cameras import load_cameras
from core.codec.ngs import encode_ngs, read_ngs_scene
from core.errors import InputFileError, OutputFileError, UsageError, printable
from core.io import read_scene_with_info, write_ply
from core.io.atomic import TMP_SUFFIX, atomic_write_bytes, check_writable, remove_stale_temps
from core.io.input_file import read_input_bytes
from core.neural_field import DECODE_CHUNK_FLOATS
from tests.core.test_codec_ngs import rewrite_header, small_model

ROOT = Path(__file__).resolve().parents[2]
HUGE = 10**400  # an integer JSON accepts and float() cannot convert


def _main(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=240)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The process failed with status 2 and one ``error:`` line, last on stderr (after any progress lines)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and lines and lines[-1].startswith("error: "), proc.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def _transforms(tmp_path: Path, **frame) -> Path:
    (tmp_path / "a.png").write_bytes(b"")
    data = {"camera_angle_x": 0.7, "w": 40, "h": 30,
            "frames": [{"file_path": "a", "transform_matrix": np.eye(4).tolist(), **frame}]}
    p = tmp_path / "transforms.json"
    p.write_text(json.dumps(data))
    return p


# -- 1-5: camera files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["width", "position"])
def test_huge_integers_in_camera_json_are_clean_errors(tmp_path, where):
    cam = {"id": 0, "img_name": "a", "width": 40, "height": 30, "position": [0, 0, 0],
           "rotation": np.eye(3).tolist(), "fx": 50, "fy": 50}
    if where == "width":
        cam["width"] = HUGE
    else:
        cam["position"] = [HUGE, 0, 0]
    p = tmp_path / "cameras.json"
    p.write_text(json.dumps([cam]))
    with pytest.raises(InputFileError, match="too large"):
        load_cameras(p)


def test_huge_integer_in_transforms_json_is_a_clean_error(tmp_path):
    p = _transforms(tmp_path)
    data = json.loads(p.read_text())
    data["frames"][0]["transform_matrix"][0][3] = HUGE
    p.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match="too large"):
        load_cameras(p)


def test_deeply_nested_json_is_a_clean_error(tmp_path):
    p = tmp_path / "cameras.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputFileError, match="nested too deeply"):
        load_cameras(p)


@pytest.mark.parametrize("name, problem", [("a\0b", "NUL"), ("a\ud800b", "unpaired surrogate")])
def test_file_path_with_nul_or_surrogate_is_a_clean_error(tmp_path, name, problem):
    p = _transforms(tmp_path)
    p.write_text(json.dumps({**json.loads(p.read_text()), "frames": [
        {"file_path": name, "transform_matrix": np.eye(4).tolist()}]}))
    with pytest.raises(InputFileError, match=problem):
        load_cameras(p)


def test_decompression_bomb_image_is_skipped_not_raised(tmp_path):
    p = _transforms(tmp_path)
    bomb = tmp_path / "a.png"
    Image.new("1", (1, 1)).save(bomb)
    data = bytearray(bomb.read_bytes())
    data[16:24] = struct.pack(">II", 200_000, 200_000)  # the IHDR size, CRC left wrong: Pillow reads the size
    import zlib
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    bomb.write_bytes(bytes(data))
    with pytest.raises(Image.DecompressionBombError):  # the bomb is real
        Image.open(bomb)
    with pytest.raises(InputFileError, match="a.png is not a readable image"):  # not DecompressionBombError
        load_cameras(p)


def test_colmap_image_name_longer_than_the_file_system_allows(tmp_path):
    model = tmp_path / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("1 PINHOLE 40 30 50 50 20 15\n")
    long_name = "x" * 300 + ".jpg"
    (model / "images.txt").write_text(f"1 1 0 0 0 0 0 0 1 {long_name}\n\n")
    cs = load_cameras(model)  # no OSError (File name too long): the image is simply not found
    assert len(cs.cameras) == 1 and cs.cameras[0].image_path is None


# -- 6-7: .ngs ------------------------------------------------------------------------------------------------
def test_ngs_whose_ranges_overflow_is_refused_and_decompress_writes_nothing(tmp_path):
    good = encode_ngs(small_model(20, 2, sh=0, hidden=4, layers=2, pe=0, seed=1))

    def overflow(h):
        h["attr_lo"][0], h["attr_hi"][0] = -3.4e38, 3.4e38

    bad = tmp_path / "bad.ngs"
    bad.write_bytes(rewrite_header(good, overflow))
    with pytest.raises(InputFileError, match="non-finite"):
        read_ngs_scene(bad)
    out = tmp_path / "out.ply"
    _one_line_error(_main("decompress", bad, "-o", out), "bad.ngs", "non-finite")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.ngs"]


def test_ngs_wider_than_any_real_file_is_refused(tmp_path):
    good = encode_ngs(small_model(20, 2, sh=0, hidden=4, layers=2, pe=0, seed=1))
    wide = tmp_path / "wide.ngs"
    wide.write_bytes(rewrite_header(good, lambda h: h["arch"].update(hidden=4096)))
    with pytest.raises(InputFileError, match="hidden"):
        read_ngs_scene(wide)


def test_decoding_runs_the_mlps_in_bounded_chunks(monkeypatch):
    """Without autograd the MLPs see at most DECODE_CHUNK_FLOATS activations at once, whatever the width, and
    the result equals the one-pass decode."""
    import core.neural_field as nf

    model = small_model(3000, 2, sh=0, hidden=64, layers=3, pe=2, seed=2)
    with torch.enable_grad():
        whole = model.predict_normalised().detach()
    monkeypatch.setattr(nf, "DECODE_CHUNK_FLOATS", 64 * 100)
    seen = []
    for f in model.fields:
        f.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]))
    with torch.no_grad():
        chunked = model.predict_normalised()
    assert max(seen) == 100 and len(seen) > 20
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    assert DECODE_CHUNK_FLOATS * 4 <= 64 * 2**20  # the real bound: 32 MiB of activations per step


# -- 8: messages ---------------------------------------------------------------------------------------------
def test_error_messages_escape_terminal_control_sequences(tmp_path):
    p = tmp_path / "evil.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\ncomment \x1b]0;pwned\x07 \x1b[2J\nelement vertex x\n")
    proc = _main("info", p)
    line = _one_line_error(proc, "evil.ply")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert printable("a\x1b[2Jb\nc\ud800") == "a\\x1b[2Jb\\nc\\ud800" and printable("plain é") == "plain é"
    assert line


def test_a_newline_in_a_file_name_stays_on_one_line(tmp_path):
    p = tmp_path / "two\nlines.ply"
    p.write_bytes(b"not a ply")
    _one_line_error(_main("info", p), "two\\nlines.ply")
    assert str(UsageError("a\nb")) == "a\\nb"


# -- 9: empty scenes and impossible cameras ---------------------------------------------------------------
def test_zero_vertex_ply_is_refused_when_read(tmp_path):
    p = tmp_path / "empty.ply"
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\n" + b"".join(b"property float %s\n" % n.encode()
                                                                      for n in props) + b"end_header\n")
    with pytest.raises(InputFileError, match="holds no Gaussians"):
        read_scene_with_info(p)
    _one_line_error(_main("render", p, "-o", tmp_path / "v.png"), "holds no Gaussians")
    assert not (tmp_path / "v.png").exists()


def test_a_camera_larger_than_the_limit_is_refused(tmp_path):
    with pytest.raises(CameraValidationError, match="limit"):
        Camera(np.eye(4), 50.0, 50.0, 20.0, 15.0, 1_000_000, 1_000_000)
    Camera(np.eye(4), 50.0, 50.0, 20.0, 15.0, MAX_IMAGE_SIDE, 10)  # the limit itself is fine
    cam = {"id": 0, "img_name": "a", "width": 1_000_000, "height": 1_000_000, "position": [0, 0, 0],
           "rotation": np.eye(3).tolist(), "fx": 50, "fy": 50}
    p = tmp_path / "cameras.json"
    p.write_text(json.dumps([cam]))
    with pytest.raises(InputFileError, match="limit"):
        load_cameras(p)


# -- 10: special files and names ------------------------------------------------------------------------------
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo, cams = tmp_path / "f.ply", tmp_path / "cameras.json"
    os.mkfifo(fifo)
    os.mkfifo(cams)
    for args in (("info", fifo), ("decompress", fifo, "-o", tmp_path / "o.ply"),
                 ("render", ROOT / "resources" / "demo" / "donut.ply", "-o", tmp_path / "v.png", "--cameras", cams)):
        _one_line_error(_main(*args), "named pipe")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_not_read_forever(device):
    with pytest.raises(InputFileError, match="a device"):
        read_scene_with_info(device)
    with pytest.raises(InputFileError, match="a device"):
        read_input_bytes(device, 1024)


def test_an_input_name_over_255_bytes_is_a_clean_error(tmp_path):
    _one_line_error(_main("info", tmp_path / ("n" * 300 + ".ply")))


def test_bounded_read_refuses_a_file_over_its_limit(tmp_path):
    p = tmp_path / "big.json"
    p.write_bytes(b" " * 2000)
    with pytest.raises(InputFileError, match="too large"):
        read_input_bytes(p, 1000, "a JSON file")
    assert read_input_bytes(p, 2000) == b" " * 2000


# -- 11: outputs ----------------------------------------------------------------------------------------------
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): no read-only folder to test with")
        with pytest.raises(OutputFileError, match="cannot write"):
            check_writable(ro / "x.ngs")
        proc = _main("compress", ROOT / "resources" / "demo" / "donut.ply", "-o", ro / "x.ngs")
        _one_line_error(proc, "x.ngs", "cannot write")
    finally:
        ro.chmod(0o755)


def test_output_problems_are_clean_errors_before_any_work(tmp_path):
    dangling = tmp_path / "d.ngs"
    dangling.symlink_to(tmp_path / "missing" / "target.ngs")
    with pytest.raises(OutputFileError, match="dangling"):
        check_writable(dangling)
    with pytest.raises(OutputFileError, match="too long"):
        check_writable(tmp_path / ("n" * 300 + ".ngs"))
    _one_line_error(_main("compress", ROOT / "resources" / "demo" / "donut.ply", "-o", "/proc/x.ngs"), "x.ngs")


def test_a_legal_249_character_name_is_written(tmp_path):
    target = tmp_path / ("n" * 245 + ".ngs")
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_temp_file_left_by_a_killed_writer_is_removed_on_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".scene.ngs.{int(dead.stdout)}.abcd1234{TMP_SUFFIX}"
    alive = tmp_path / f".other.ngs.{os.getppid()}.abcd1234{TMP_SUFFIX}"  # a live process's write in progress
    foreign = tmp_path / ".scene.ngs.tmp"  # not of our naming: left alone
    for p in (stale, alive, foreign):
        p.write_bytes(b"partial")
    atomic_write_bytes(tmp_path / "new.ngs", b"ok")
    assert not stale.exists() and alive.exists() and foreign.exists()
    assert remove_stale_temps(tmp_path) == []


def test_write_ply_into_a_full_or_refusing_folder_is_an_output_error(tmp_path, monkeypatch):
    import errno

    import core.io.atomic as atomic

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    scene = small_model(10, 1, sh=0, hidden=2, layers=2, pe=0, seed=0).decode().detach()
    with pytest.raises(OutputFileError, match="the disk is full"):
        write_ply(scene, tmp_path / "x.ply")
    assert list(tmp_path.iterdir()) == []
