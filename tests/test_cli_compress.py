"""compress / decompress / eval / info on .ngs, end to end through main.py (tiny settings)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "donut.ply"
FAST = ["--preset", "preview", "--up", "+z", "--fit-iters", "30", "--finetune-iters", "4", "--views", "4",
        "--view-size", "32", "--eval-size", "32", "--clusters", "3"]


def run(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=kw.pop("cwd", REPO), **kw)


@pytest.fixture(scope="module")
def small_ply(tmp_path_factory) -> Path:
    from core.io import read_scene, write_ply

    scene = read_scene(DEMO)
    idx = torch.randperm(scene.num_gaussians, generator=torch.Generator().manual_seed(0))[:1500]
    path = tmp_path_factory.mktemp("scene") / "small.ply"
    write_ply(scene.subset(idx), path)
    return path


@pytest.fixture(scope="module")
def compressed(small_ply, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ngs") / "small.ngs"
    r = run("compress", small_ply, "-o", out, *FAST, "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_compress_writes_a_smaller_file_and_reports_honest_numbers(small_ply, compressed):
    out, summary = compressed
    assert out.stat().st_size == summary["compressed_bytes"]
    assert summary["original_bytes"] == small_ply.stat().st_size
    assert abs(summary["n_kept"] - 900) <= 1  # prune ratio 0.4 of 1500
    assert summary["n_clusters"] == 3
    assert summary["psnr"] is not None and summary["psnr"] > 10
    assert summary["view_size"] == 32  # --eval-size 32: the held-out views the PSNR was measured at


def test_eval_reproduces_the_compression_heldout_numbers(small_ply, compressed):
    out, summary = compressed
    r = run("eval", small_ply, out, "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    for key in ("original_bytes", "compressed_bytes", "ratio", "psnr", "ssim", "psnr_gt", "ssim_gt"):
        assert key in ev
    assert ev["compressed_bytes"] == out.stat().st_size
    assert ev["psnr"] == pytest.approx(summary["psnr"], abs=0.05)  # same held-out views, same decoded scene
    assert ev["psnr_gt"] is None
    assert ev["view_size"] == 32  # the compression's --eval-size, stored in the .ngs


def test_eval_text_names_the_view_size(small_ply, compressed):
    out, summary = compressed
    r = run("eval", small_ply, out)
    assert r.returncode == 0, r.stderr
    assert f"({summary['heldout_views']} held-out views, 32 px)" in r.stdout


def test_compress_summary_text_names_the_view_size():
    from core.cli.compress import format_compress_summary

    s = {"output": "x.ngs", "compressed_bytes": 10, "ratio": 2.0, "original_bytes": 20, "n_kept": 5, "n_original": 9,
         "n_clusters": 2, "psnr": 38.5, "ssim": 0.98, "heldout_views": 8, "view_size": 800,
         "target_source": "renders", "seconds": 1.0, "timings_s": {"fit": 0.5}}
    assert "held-out: PSNR 38.50 dB, SSIM 0.9800 over 8 views at 800 px (against the original's renders)" in \
        format_compress_summary(s)


def test_eval_of_a_file_without_eval_size_uses_800_px_and_says_so(caplog):
    """A .ngs written before held-out views had their own size stores image_size only: eval renders its
    held-out views at the protocol's 800 px (not at the old image_size), with a log line saying so."""
    import logging

    from core.cli.compress import _views_config_from
    from core.pipeline.config import config_from_preset

    current = config_from_preset("balanced")
    old = {k: v for k, v in config_from_preset("preview", image_size=128).to_dict().items() if k != "eval_size"}
    with caplog.at_level(logging.INFO, logger="core.cli.compress"):
        cfg = _views_config_from(old, current)
    assert cfg.eval_size == 800 and cfg.image_size == 128 and cfg.n_test_views == old["n_test_views"]
    assert "records no held-out view size" in caplog.text and "rendered at 800 px" in caplog.text
    new = config_from_preset("preview", eval_size=96).to_dict()
    assert _views_config_from(new, current).eval_size == 96  # the compression's own views
    assert _views_config_from(new, current.replace(eval_size=64), explicit_eval_size=True).eval_size == 64


@pytest.mark.parametrize("command", ["compress", "eval"])
def test_bad_eval_size_is_a_usage_error(small_ply, compressed, tmp_path, command):
    args = [small_ply, "-o", tmp_path / "x.ngs"] if command == "compress" else [small_ply, compressed[0]]
    r = run(command, *args, "--eval-size", "4")
    assert r.returncode == 2 and "eval_size must be an integer >= 8" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and list(tmp_path.iterdir()) == []


def test_decompress_progressive_and_full(compressed, tmp_path):
    from core.io import read_scene

    out, summary = compressed
    part = tmp_path / "part.ply"
    r = run("decompress", out, "-o", part, "--clusters", "1")
    assert r.returncode == 0, r.stderr
    full = tmp_path / "full.ply"
    assert run("decompress", out, "-o", full).returncode == 0
    n_part, n_full = read_scene(part).num_gaussians, read_scene(full).num_gaussians
    assert n_full == summary["n_kept"] and 0 < n_part < n_full
    again = run("decompress", out, "-o", full)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_info_reads_ngs_headers(compressed):
    out, summary = compressed
    r = run("info", out, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["format"], info["n_gaussians"], info["bytes"]) == ("ngs", summary["n_kept"], out.stat().st_size)


def test_corrupt_ngs_is_a_one_line_error(compressed, tmp_path):
    out, _ = compressed
    bad = tmp_path / "bad.ngs"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    r = run("decompress", bad, "-o", tmp_path / "x.ply")
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.ply").exists()


def test_bad_options_fail_before_work_and_write_nothing(small_ply, tmp_path):
    out = tmp_path / "x.ngs"
    r = run("compress", small_ply, "-o", out, "--clusters", "0")
    assert r.returncode == 2 and "n_clusters" in r.stderr
    r = run("compress", small_ply, "-o", tmp_path / "x.ply")
    assert r.returncode == 2 and ".ngs" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_no_file_and_keeps_an_existing_one(small_ply, tmp_path):
    out = tmp_path / "keep.ngs"
    out.write_bytes(b"precious")
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "compress", str(small_ply), "-o", str(out),
                             "--force", *FAST, "--fit-iters", "100000"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline and "fit" not in seen:
        seen += proc.stderr.readline()
    assert "fit" in seen, "compression never reached the fitting stage"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ngs"]


def test_bench_decode_json():
    r = run("bench", "decode", "--n", "3000", "--clusters", "4", "--hidden", "16", "--repeats", "1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 3000 and out["seconds"] > 0 and out["pass"] is None  # the target is defined at 1M


def test_bench_ablation_has_the_four_rows_with_real_sizes(small_ply):
    r = run("bench", "ablation", "--scene", small_ply, *FAST, "--fit-iters", "10", "--finetune-iters", "2",
            "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert [row["n_clusters"] for row in rows] == [1, 3, 3, 3]
    assert [(row["use_importance_weights"], row["use_freq_loss"]) for row in rows] == [
        (False, False), (False, False), (True, False), (True, True)]
    assert rows[0]["bytes"] < rows[1]["bytes"]  # one MLP is smaller than three
    assert all(row["psnr"] > 5 for row in rows)


# -- .ngs v2 rate control from the command line ---------------------------------------------------------------
CODEC_FAST = ["--up", "+z", "--views", "4", "--view-size", "32", "--eval-size", "32", "--fit-iters", "20"]


def test_default_compress_is_a_visually_lossless_v2_file_and_says_what_it_chose(small_ply, tmp_path):
    out = tmp_path / "default.ngs"
    r = run("compress", small_ply, "-o", out, *CODEC_FAST, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert out.read_bytes()[4:6] == b"\x02\x00" and out.stat().st_size == s["compressed_bytes"]
    c = s["codec"]
    assert c["target_psnr"] == 40.0 and c["reached"] is True and s["psnr"] >= 40.0
    assert c["trials"] and c["prune_search"] and c["settings"]["position_bits"] <= 16
    text = run("compress", small_ply, "-o", tmp_path / "text.ngs", *CODEC_FAST, "--target-size", "20k")
    assert text.returncode == 0, text.stderr
    assert "codec: .ngs v2" in text.stdout and "search:" in text.stdout
    assert (tmp_path / "text.ngs").stat().st_size <= 20_000
    ev = run("eval", small_ply, out, "--json")  # eval re-creates the held-out views from the file's record
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["psnr"] == pytest.approx(s["psnr"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--target-psnr", "0"], "--target-psnr must be"),
    (["--target-psnr", "40", "--target-size", "100k"], "not both"),
    (["--target-size", "lots"], "not a size"),
    (["--residuals", "glitter"], "unknown residual group"),
    (["--residuals", "none", "--target-psnr", "30"], "needs residuals"),
    (["--format-version", "1"], "--format-version 1"),
    (["--preset", "balanced", "--residuals", "opacity"], "needs a target"),
])
def test_bad_codec_options_are_usage_errors_and_write_nothing(small_ply, tmp_path, args, message):
    out = tmp_path / "x.ngs"
    r = run("compress", small_ply, "-o", out, *CODEC_FAST, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_parse_size_accepts_units():
    from core.cli.compress import parse_byte_size as parse_size, parse_groups

    assert parse_size("250000") == 250_000 and parse_size("250k") == 250_000 and parse_size("1.5MB") == 1_500_000
    assert parse_groups("sh_rest,opacity") == ("opacity", "sh_band1", "sh_band2", "sh_band3")
    assert parse_groups("none") == () and len(parse_groups("all")) == 7


def test_effort_chooses_the_learning_stages_and_the_summary_times_every_stage(small_ply, tmp_path):
    fast = run("compress", small_ply, "-o", tmp_path / "fast.ngs", *CODEC_FAST, "--effort", "fast", "--json")
    assert fast.returncode == 0, fast.stderr
    f = json.loads(fast.stdout)
    assert f["effort"] == "fast" and "coadapt" not in f["timings_s"] and "qat" not in f["timings_s"]
    learn = run("compress", small_ply, "-o", tmp_path / "learn.ngs", *CODEC_FAST, "--coadapt-iters", "12",
                "--qat-iters", "6")  # no --effort with a target: default, with these step counts
    assert learn.returncode == 0, learn.stderr
    assert "effort default" in learn.stdout and "coadapt " in learn.stdout and "qat " in learn.stdout
    assert "co-adapted" in learn.stdout  # the prune search names the co-adapted ceiling it relied on
    bad = run("compress", small_ply, "-o", tmp_path / "bad.ngs", *CODEC_FAST, "--effort", "slow")
    assert bad.returncode == 2 and "--effort" in bad.stderr and not (tmp_path / "bad.ngs").exists()
