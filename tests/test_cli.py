"""The command line, end to end: ``main.py`` run as a subprocess on the bundled demo scene.

Quick by design (well under a minute on 2 cores): small images, a 2,000-Gaussian benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.cli as cli
from core.cli.common import check_output_path, parse_background, parse_size, parse_up
from core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "main.py"
DONUT = ROOT / "resources" / "demo" / "donut.ply"


def run_main(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def assert_not_blank(path: Path, size: tuple[int, int]) -> None:
    img = Image.open(path)
    assert img.format == "PNG" and img.size == size and img.mode == "RGB"
    a = np.asarray(img, dtype=np.float32) / 255.0
    lit = (a.max(axis=2) > 0.1).mean()
    assert 0.01 < lit < 0.99, f"{path}: {lit:.1%} of the pixels differ from the background"
    assert a.std() > 0.05


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


# -- help and import cost -------------------------------------------------------------------------------
def test_help_lists_the_commands_without_importing_torch():
    proc = run_main("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("info", "render", "bench", "demo"):
        assert command in proc.stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, core.cli; core.cli.build_parser(); "
                            "print(sorted(m for m in ('torch', 'numba', 'moderngl', 'numpy') if m in sys.modules))"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", ("main.py --help should not import heavy modules: "
                                          + probe.stdout + probe.stderr)


# -- info -------------------------------------------------------------------------------------------------------
def run_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``core.cli.main(args)`` in this process (cheaper than a subprocess): (status, stdout, stderr)."""
    monkeypatch.setattr(cli, "configure_logging", lambda verbose: None)  # leave pytest's logging alone
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_plain_on_the_demo_scene(monkeypatch, capsys):
    code, out, _ = run_in_process(monkeypatch, capsys, "info", DONUT)
    assert code == 0
    assert "45,624" in out and "sh degree:    0" in out and "format:       ply" in out
    assert f"{DONUT.stat().st_size:,} bytes" in out


def test_info_json_on_the_demo_scene():
    proc = run_main("info", DONUT, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "ply"
    assert info["n_gaussians"] == 45624
    assert info["sh_degree"] == 0
    assert info["bytes"] == DONUT.stat().st_size
    b = info["bounds"]
    for key in ("min", "max", "p02", "p98"):
        assert len(b[key]) == 3
    assert all(lo <= p2 <= p98 <= hi for lo, p2, p98, hi in zip(b["min"], b["p02"], b["p98"], b["max"]))
    assert info["warnings"] == []


def test_info_on_a_text_file_named_ply_is_a_one_line_error(tmp_path):
    bad = tmp_path / "x.ply"
    bad.write_text("this is not a scene\n")
    assert_one_line_error(run_main("info", bad), str(bad))


def test_info_on_a_missing_file_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_main("info", tmp_path / "missing.ply"), "missing.ply", "no such file")


# -- render ------------------------------------------------------------------------------------------------------
def test_render_orbit_writes_a_png_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "view.png"
    proc = run_main("render", DONUT, "--out", out, "--orbit", "30", "--size", "96x64", "--up", "+z")
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "96x64" in proc.stdout
    assert_not_blank(out, (96, 64))

    before = out.read_bytes()
    again = run_main("render", DONUT, "--out", out, "--orbit", "90", "--size", "96x64")
    assert_one_line_error(again, str(out), "--force")
    assert out.read_bytes() == before



def test_render_force_overwrites(tmp_path, monkeypatch, capsys):
    out = tmp_path / "view.png"
    out.write_bytes(b"old")
    code, stdout, _ = run_in_process(monkeypatch, capsys, "render", DONUT, "--out", out, "--orbit", "90",
                                     "--size", "48x32", "--force", "--background", "white", "--backend", "cpu")
    assert code == 0 and str(out) in stdout
    img = np.asarray(Image.open(out))
    assert img.shape == (32, 48, 3) and (img[0, 0] == 255).all(), "white background expected in the corner"


def test_render_usage_errors_exit_2(tmp_path):
    bad_size = run_main("render", DONUT, "--out", tmp_path / "a.png", "--size", "96by64")
    assert bad_size.returncode == 2 and "Traceback" not in bad_size.stderr and "--size" in bad_size.stderr
    no_cameras = run_main("render", DONUT, "--out", tmp_path / "a.png", "--camera", "3")
    assert_one_line_error(no_cameras, "--cameras")
    assert not (tmp_path / "a.png").exists()


def test_demo_command_summarises_and_renders_the_demo(tmp_path):
    proc = run_main("demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "demo-render.png"
    assert "45,624" in proc.stdout and str(out) in proc.stdout
    assert_not_blank(out, (800, 600))


@pytest.mark.parametrize("argv, gui", [([], True), (["-v"], True), ([str(DONUT)], True), (["scene.ngs"], True),
                                       (["--screenshot", "out.png"], True), (["--cameras", "x", str(DONUT)], True),
                                       (["info", str(DONUT)], False), (["render", "--help"], False),
                                       (["--help"], False), (["infoo"], False)])
def test_no_command_means_the_application(monkeypatch, argv, gui):
    """``main.py`` without a command (optionally a scene and application options) starts the GUI; every
    command still goes to the command line, unchanged."""
    import app.main
    import main

    calls = []
    monkeypatch.setattr(app.main, "run", lambda a: calls.append(("gui", a)) or 0)
    monkeypatch.setattr(cli, "main", lambda a: calls.append(("cli", a)) or 0)
    assert main.main(argv) == 0
    assert calls == [("gui" if gui else "cli", argv)]


# -- bench ---------------------------------------------------------------------------------------------------------
def test_bench_render_json_is_one_object_with_the_documented_keys():
    proc = run_main("bench", "render", "--json", "--n", "2000", "--size", "64x64", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON value on stdout
    assert isinstance(result, dict)
    for key in ("cpu_fwd_s", "cpu_fwd_bwd_s", "cpu_first_call_s", "display_fps", "n_gaussians", "peak_rss_mb",
                "width", "height", "targets", "pass", "all_pass"):
        assert key in result, key
    assert result["n_gaussians"] == 2000 and (result["width"], result["height"]) == (64, 64)
    assert 0 < result["cpu_fwd_s"] and 0 < result["cpu_fwd_bwd_s"] and 0 < result["peak_rss_mb"]
    assert result["grads_finite"] is True
    assert result["at_target_conditions"] is False  # 2,000 Gaussians at 64x64 is not what the targets mean
    assert set(result["pass"]) == {"cpu_fwd_bwd", "display_fps", "peak_rss"}
    if result["display_fps"] is None:
        assert result["display_skipped"] and result["pass"]["display_fps"] is None
    else:
        assert result["display_fps"] > 0


# -- in process: parsing and error mapping ---------------------------------------------------------------------------
def test_parse_size_and_background():
    import argparse

    assert parse_size("800x600") == (800, 600) and parse_size("96X64") == (96, 64)
    for bad in ("800", "0x10", "-5x5", "axb", "1x2x3", "99999x10"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)
    assert parse_up("+z") == (0.0, 0.0, 1.0) and parse_up("-y") == (0.0, -1.0, 0.0) and parse_up("x") == (1.0, 0.0, 0.0)
    assert parse_up("0, 0.5, 1") == (0.0, 0.5, 1.0)
    for bad in ("q", "0,0,0", "1,2", "++z", "inf,0,0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_up(bad)
    assert parse_background("white") == (1.0, 1.0, 1.0)
    assert parse_background("0.5, 0.25,1") == (0.5, 0.25, 1.0)
    for bad in ("1,1", "2,0,0", "red", "a,b,c"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_background(bad)


def test_check_output_path(tmp_path):
    existing = tmp_path / "x.png"
    existing.write_bytes(b"")
    with pytest.raises(UsageError, match="already exists"):
        check_output_path(existing, force=False)
    assert check_output_path(existing, force=True) == existing
    with pytest.raises(UsageError, match=r"\.png"):
        check_output_path(tmp_path / "x.jpg", force=False)
    with pytest.raises(UsageError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "x.png", force=False)


@pytest.mark.parametrize("exc,code", [(KeyboardInterrupt(), 130), (RuntimeError("boom"), 1),
                                      (UsageError("bad option"), 2)])
def test_main_maps_exceptions_to_exit_codes(monkeypatch, exc, code):
    def raiser(args):
        raise exc

    import core.cli.entry as cli_entry
    import core.cli.scene as cli_scene

    monkeypatch.setattr(cli_entry, "configure_logging", lambda verbose: None)
    monkeypatch.setattr(cli_scene, "cmd_info", raiser)
    assert cli.main(["info", "whatever.ply"]) == code
