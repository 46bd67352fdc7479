"""``convert``, and every command opening every readable format (issue 13): SPZ and SOG in, SPZ out, a .ngs
rendered through its decoder, formats we do not read named in one line."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import core.cli.scene as cli_scene
from core.cli import main
from core.codec.ngs import write_ngs
from core.io import read_scene_with_info, write_ply
from core.io.spz import read_spz
from tests.core.test_codec_ngs import small_model
from tests.test_cli import assert_not_blank, assert_one_line_error, run_main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo" / "donut.ply"


@pytest.fixture(scope="module")
def sh3_scene(tmp_path_factory) -> Path:
    """A 300-Gaussian SH-3 scene (the demo's first splats with random higher bands) as a .ply."""
    scene, _ = read_scene_with_info(DEMO)
    scene = scene.subset(torch.arange(300)).with_sh_degree(3)
    rest = torch.randn(300, 15, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    scene = type(scene)(scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh_dc, rest)
    path = tmp_path_factory.mktemp("convert") / "sh3.ply"
    write_ply(scene, path)
    return path


@pytest.mark.parametrize("version", [3, 4])
def test_convert_ply_to_spz_and_back_keeps_the_scene_within_spz_steps(tmp_path, sh3_scene, version, capsys):
    spz, back = tmp_path / "s.spz", tmp_path / "back.ply"
    assert main(["convert", str(sh3_scene), "-o", str(spz), "--spz-version", str(version)]) == 0
    assert f"Niantic SPZ v{version}" in capsys.readouterr().out
    _, enc, _ = read_spz(spz.read_bytes(), spz)
    assert enc.startswith(f"spz v{version}")
    assert main(["convert", str(spz), "-o", str(back)]) == 0
    a, _ = read_scene_with_info(sh3_scene)
    b, info = read_scene_with_info(back)
    assert info.format == "ply" and b.num_gaussians == 300 and b.sh_degree == 3
    assert (a.means - b.means).abs().max() <= 2**-13 + 1e-7  # 12 fractional bits: half a step
    assert (a.log_scales - b.log_scales).abs().max() <= 1 / 32 + 1e-6
    assert (a.sh_rest - b.sh_rest).abs().max() <= 8.5 / 128


def test_convert_drops_sh_bands(tmp_path, sh3_scene):
    out = tmp_path / "sh1.spz"
    assert main(["convert", str(sh3_scene), "-o", str(out), "--sh-degree", "1"]) == 0
    scene, info = read_scene_with_info(out)
    assert (info.format, scene.sh_degree) == ("spz", 1)


@pytest.mark.parametrize("name, needle", [("x.sog", "reads .sog files but does not write them"),
                                          ("x.compressed.ply", "does not write them"),
                                          ("x.xyz", "unknown output format .xyz")])
def test_convert_names_what_it_writes(tmp_path, name, needle):
    proc = run_main("convert", DEMO, "-o", tmp_path / name)
    assert_one_line_error(proc, needle, ".spz")
    assert list(tmp_path.iterdir()) == []


def test_convert_refuses_to_replace_and_to_read_garbage(tmp_path):
    out = tmp_path / "x.spz"
    out.write_bytes(b"mine")
    assert_one_line_error(run_main("convert", DEMO, "-o", out), "already exists")
    assert out.read_bytes() == b"mine"
    junk = tmp_path / "junk.spz"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(run_main("convert", junk, "-o", tmp_path / "y.ply"), "junk.spz")


def test_convert_to_ngs_means_compress(monkeypatch, tmp_path):
    import core.cli.compress as cli_compress

    seen = {}
    monkeypatch.setattr(cli_compress, "cmd_compress", lambda args: seen.setdefault("args", args) and 0)
    assert cli_scene.cmd_convert(cli_scene_args(DEMO, tmp_path / "x.ngs")) == 0
    args = seen["args"]
    assert (args.input, args.output, args.preset, args.target_psnr) == (str(DEMO), str(tmp_path / "x.ngs"), None, None)


def cli_scene_args(src, out):
    from core.cli import build_parser

    return build_parser().parse_args(["convert", str(src), "-o", str(out)])


def test_render_and_info_open_a_ngs(tmp_path):
    ngs = tmp_path / "m.ngs"
    write_ngs(small_model(400, 3, sh=1, hidden=8, layers=2, pe=2, seed=4), ngs)
    png = tmp_path / "v.png"
    proc = run_main("render", ngs, "-o", png, "--size", "160x120")
    assert proc.returncode == 0, proc.stderr
    assert_not_blank(png, (160, 120))
    proc = run_main("info", ngs)
    assert proc.returncode == 0 and "ngs" in proc.stdout


def test_info_and_render_open_spz_and_sog(tmp_path, sh3_scene):
    spz = tmp_path / "s.spz"
    assert main(["convert", str(sh3_scene), "-o", str(spz)]) == 0
    proc = run_main("info", spz, "--json")
    assert proc.returncode == 0 and '"format": "spz"' in proc.stdout
    from tests.core.test_io_sog import bundle, encode_sog_v2  # a SOG built from its documented layout

    scene, _ = read_scene_with_info(sh3_scene)
    sog = tmp_path / "s.sog"
    sog.write_bytes(bundle(*encode_sog_v2(scene)))
    proc = run_main("info", sog, "--json")
    assert proc.returncode == 0 and '"format": "sog"' in proc.stdout, proc.stderr


@pytest.mark.parametrize("name, data, what", [
    ("a.ksplat", b"\x00\x01" + bytes(200), ".ksplat"),
    ("a.lcc", b'{"version": 1}', ".lcc"),
    ("a.glb", b"glTF" + struct.pack("<II", 2, 100) + bytes(88), "glTF binary"),
    ("a.bin", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "unrecognised binary"),
    ("a.ply", b"glTF" + bytes(60), "glTF binary"),  # plainly not a PLY, whatever its name
])
def test_unsupported_formats_are_named_in_one_line(tmp_path, name, data, what, capsys):
    p = tmp_path / name
    p.write_bytes(data)
    for args in (["info", str(p)], ["render", str(p), "-o", str(tmp_path / "v.png")]):
        assert main(args) == 2  # in this process: the subprocess path is covered by test_cli's one-line checks
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(err) == 1 and all(n in err[0] for n in (name, what, "it reads .ply")), err
        assert "not a PLY file" not in err[0]
