"""``bench formats``: a --quick run on a donut subset through the CLI (CSV, Markdown, plot), the skip
without npm, the output-folder check, the reading of splat-transform's decoded .ply, and the verdict."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math

from pathlib import Path

import numpy as np
import pytest
import torch

import core.bench.formats.run as bench_run
from core.bench.formats.plan import NGS_SETTINGS, QUICK_OVERRIDES, QUICK_PRESET, BenchPlan, SceneRun, default_plan
from core.bench.formats.points import point_key, views_fingerprint
from core.bench.formats.run import (RUN_MARKER, check_output_dir, read_decoded_ply, remove_stale_work_dirs,
                                    run_format_benchmark, splat_transform_or_reason)
from core.bench.formats.report import CSV_COLUMNS, compare_with_peers, format_markdown, summary_table, verdict_line
from core.cli import main
from core.errors import InputFileError, UsageError
from tests.conftest import shared_path

PEERS = {"compressed.ply", "spz", "sog"}


def _donut_subset(folder, n: int):
    from core.io import read_scene, write_ply

    scene = read_scene(shared_path("scenes", "donut.ply"))
    path = folder / "donut.ply"  # named as the real one: the bench knows donut is z-up
    write_ply(scene.subset(torch.arange(n) * (scene.num_gaussians // n)), path, include_normals=False)
    return path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``bench formats --quick`` on 2,000 Gaussians of donut (~30 s on the busy 2-core machine)."""
    folder = tmp_path_factory.mktemp("bench_formats")
    scene = _donut_subset(folder, 2000)
    out = folder / "results"
    peers_ran = splat_transform_or_reason()[0] is not None  # installs it if needed, before the run uses it
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["bench", "formats", "--scenes", str(scene), "--out", str(out), "--quick"])
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"code": code, "stdout": stdout.getvalue(), "out": out, "scene": scene, "rows": rows, "peers": peers_ran}


# slow: quick_run is the whole `bench formats --quick` on a real scene, peers included (~20-30 s here). CI keeps
# bench formats on real data through the quicker runs below (a second run, saved peer points, SIGTERM).
@pytest.mark.slow
def test_csv_has_the_columns_and_sane_values(quick_run):
    assert quick_run["code"] == 0
    rows = quick_run["rows"]
    assert list(rows[0]) == CSV_COLUMNS
    original = rows[0]
    ply_bytes = quick_run["scene"].stat().st_size
    assert (original["method"], int(original["bytes"])) == ("ply", ply_bytes)
    for r in rows:
        assert r["scene"] == "donut" and r["note"] == "", r
        assert r["view_size"] == str(QUICK_OVERRIDES["eval_size"])  # every row says where it was measured
        assert float(r["ratio"]) == pytest.approx(ply_bytes / int(r["bytes"]), rel=1e-3)
        if r["method"] == "ply":
            continue
        assert 10.0 < float(r["psnr"]) and math.isfinite(float(r["psnr"])), r
        assert 0.0 < float(r["ssim"]) <= 1.0
        # a tiny .ngs decodes (and writes its .ply) in a few milliseconds: the CSV's 2 digits can say 0.00
        assert float(r["encode_s"]) > 0 and float(r["decode_s"]) >= 0 and r["decode_s"] != ""
        assert r["psnr_gt"] == ""  # no dataset for donut
    v2 = [r for r in rows if r["method"] == "ngs" and r["setting"].startswith("v2-")]
    assert [r["setting"] for r in v2] == ["v2-fast-30dB", "v2-30dB"]  # --quick: one target, effort fast and default
    for r in v2:
        assert "target=30dB" in r["detail"] and (quick_run["out"] / "donut" / f"donut.{r['setting']}.ngs").is_file()
        assert (quick_run["out"] / "donut" / f"donut.{r['setting']}.ngs").read_bytes()[4:6] == b"\x02\x00"  # v2
    ngs = [r for r in rows if r["method"] == "ngs" and not r["setting"].startswith("v2-")]
    assert [r["setting"] for r in ngs] == [name for name, _ in NGS_SETTINGS]
    sizes = [int(r["bytes"]) for r in ngs]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), "the curve must go from small to large"
    assert float(ngs[-1]["psnr"]) > float(ngs[0]["psnr"])  # more bytes, better (even with a few steps)
    peers = {r["method"]: r for r in rows if r["method"] in PEERS}
    if quick_run["peers"]:
        assert set(peers) == PEERS
        for r in peers.values():  # quantisers: near-lossless (measured 46-65 dB on this subset)
            assert float(r["psnr"]) > 40.0 and int(r["n_gaussians"]) == 2000, r
            assert (quick_run["out"] / "donut" / f"donut.{r['method']}").is_file()
    else:
        assert not peers
    for name, _ in NGS_SETTINGS:
        assert (quick_run["out"] / "donut" / f"donut.{name}.ngs").is_file()
    assert not [p for p in quick_run["out"].iterdir() if p.name.startswith(".work")], "scratch files left behind"


@pytest.mark.slow  # quick_run: see test_csv_has_the_columns_and_sane_values
def test_plot_is_a_png_and_markdown_holds_the_table(quick_run):
    from PIL import Image

    png = quick_run["out"] / "donut.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size[0] > 400 and im.size[1] > 300
    md = (quick_run["out"] / "results.md").read_text()
    assert md == quick_run["stdout"]
    assert "## donut" in md and "| ngs | xs (K=" in md and "![donut rate-quality](donut.png)" in md
    assert f"## donut\n\nHeld-out views: {QUICK_OVERRIDES['eval_size']} px on the long side." in md
    if quick_run["peers"]:
        assert sum(line.startswith("- vs ") for line in md.splitlines()) == 3


def test_missing_npm_skips_the_peer_formats_with_a_clear_message(tmp_path, monkeypatch, caplog):
    import shutil

    import core.splat_transform as st

    real_which = shutil.which
    monkeypatch.delenv("NEURALGS_SKIP_NPM", raising=False)
    monkeypatch.setattr(st, "CACHE_DIR", tmp_path / "empty-cache")  # not installed there
    monkeypatch.setattr(st.shutil, "which", lambda name: None if name == "npm" else real_which(name))
    if real_which("node") is None:
        pytest.skip("node is not on PATH (the npm check comes after it)")
    cli, reason = splat_transform_or_reason()
    assert cli is None and reason.startswith("npm is not on PATH") and st.SPLAT_TRANSFORM_VERSION in reason

    scene = _donut_subset(tmp_path, 300)
    plan = BenchPlan(QUICK_PRESET, dict(QUICK_OVERRIDES, fit_iters=5, finetune_iters=1),
                     [("tiny", dict(n_clusters=2, hidden=8))], v2=False)
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="core.bench.formats.run"):
        result = run_format_benchmark([scene], out, plan)
    assert "splat-transform formats (compressed .ply, .spz, .sog) not run: npm is not on PATH" in caplog.text
    assert [r["method"] for r in result["rows"]] == ["ply", "ngs"]
    assert "splat-transform formats not run: npm is not on PATH (needed once" in (out / "results.md").read_text()
    assert not (tmp_path / "empty-cache" / st.SPLAT_TRANSFORM_VERSION).exists()


def test_output_folder_is_new_an_earlier_runs_or_forced(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.csv").write_text("old")
    scene = tmp_path / "scene.ply"
    scene.write_text("not read: the folder check comes first")
    assert main(["bench", "formats", "--scenes", str(scene), "--out", str(out), "--quick"]) == 2
    assert "folder is not empty and holds no earlier 'bench formats' run (use --force" in capsys.readouterr().err
    assert (out / "results.csv").read_text() == "old" and not (out / RUN_MARKER).exists()
    assert main(["bench", "formats", "--scenes", str(scene), "--out", str(tmp_path / "no" / "such"), "--quick"]) == 2
    assert main(["bench", "formats", "--scenes", str(tmp_path / "missing.ply"), "--out", str(out), "--force"]) == 2
    assert "missing.ply: no such file" in capsys.readouterr().err
    assert check_output_dir(out, force=True) == out and (out / RUN_MARKER).is_file()
    assert check_output_dir(out, force=False) == out  # now an earlier run's folder: resumed, not refused
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file", force=True)


def _tiny_plan(settings):
    return BenchPlan(QUICK_PRESET, dict(QUICK_OVERRIDES, fit_iters=5, finetune_iters=1, n_test_views=1),
                     settings, peers=False, v2=False)


def test_a_second_run_reuses_finished_points_and_recomputes_changed_ones(tmp_path, monkeypatch):
    import core.pipeline.compress as pipeline_compress

    scene = _donut_subset(tmp_path, 300)
    out = check_output_dir(tmp_path / "out", force=False)
    settings = [("a", dict(n_clusters=2, hidden=8)), ("b", dict(n_clusters=3, hidden=8))]
    first = run_format_benchmark([scene], out, _tiny_plan(settings), overwrite=True)["rows"]
    assert [r["setting"] for r in first] == ["original", "a", "b"]
    assert sorted(p.name for p in (out / "donut" / ".points").iterdir()) == ["ngs.a.json", "ngs.b.json"]

    calls = []
    real = pipeline_compress.compress
    monkeypatch.setattr(pipeline_compress, "compress", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    again = run_format_benchmark([scene], out, _tiny_plan(settings), overwrite=True)["rows"]
    assert calls == [] and again == first  # nothing recomputed, the same rows (timings included)

    changed = [settings[0], ("b", dict(n_clusters=3, hidden=12))]  # b's recipe changed
    rows = run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)["rows"]
    assert len(calls) == 1 and rows[1] == first[1] and rows[2]["encode_s"] != first[2]["encode_s"]

    (out / "donut" / "donut.a.ngs").write_bytes(b"NGS\x00 not the file that was measured")
    rows = run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)["rows"]
    assert len(calls) == 2 and abs(rows[1]["bytes"] - first[1]["bytes"]) < 100  # a's file changed: recomputed
    a_ngs = out / "donut" / "donut.a.ngs"
    a_ngs.write_bytes(bytes(a_ngs.stat().st_size))  # same size, other bytes: recomputed too
    run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)
    assert len(calls) == 3
    calls.clear()

    rows = run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True, reuse=False)["rows"]
    assert len(calls) == 2  # --force: everything

    scene.write_bytes(scene.read_bytes()[:-12] + bytes(12))  # the scene file changed (same size)
    run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)
    assert len(calls) == 4

    (out / "donut" / ".points" / "ngs.a.json").write_text("{ not json")
    run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)
    assert len(calls) == 5  # an unreadable saved result is recomputed, not an error

    bigger = dataclasses.replace(_tiny_plan(changed), overrides={**_tiny_plan(changed).overrides, "eval_size": 56})
    rows = run_format_benchmark([scene], out, bigger, overwrite=True)["rows"]
    assert len(calls) == 7 and {r["view_size"] for r in rows} == {56}  # other held-out view size: recomputed

    monkeypatch.setattr(bench_run, "views_fingerprint", lambda cameras: {"kind": "dataset", "crc32": 1})
    run_format_benchmark([scene], out, _tiny_plan(changed), overwrite=True)
    assert len(calls) == 9  # other held-out views (a dataset appeared): nothing reused
    assert not list((out / "donut" / ".points").glob("*.ngs-tmp")) and not list(out.glob("donut/.*.ngs-tmp"))


def test_point_key_covers_the_held_out_view_size_of_generated_views_only(tmp_path):
    """Generated held-out views: another eval_size is another point. A dataset's views do not depend on it
    (dataset_max_size decides), so its key leaves eval_size out and points saved before it existed stay."""
    from core.pipeline.config import config_from_preset

    def key(eval_size, cameras=None):
        cfg = config_from_preset(QUICK_PRESET, **dict(QUICK_OVERRIDES, eval_size=eval_size))
        run = SceneRun("s", None, tmp_path / "s.ply", 1, cfg, cameras, tmp_path, tmp_path, None)
        return point_key(run, {"method": "ngs"})

    assert key(48) != key(800) and key(48)["config"]["eval_size"] == 48
    assert key(48, cameras=object()) == key(800, cameras=object())
    assert "eval_size" not in key(48, cameras=object())["config"]


def test_views_fingerprint_tells_generated_views_and_each_camera_set_apart():
    from core.camera import Camera
    from core.cameras import CameraSet

    def cameras(x: float, width: int = 64):
        pose = np.eye(4)
        pose[0, 3] = x
        cams = [Camera(pose, 50.0, 50.0, 32.0, 32.0, width, 64, name=f"r_{i}") for i in range(3)]
        return CameraSet(cams, [], Path("/data/lego/transforms_train.json"), "transforms")

    assert views_fingerprint(None) == {"kind": "generated"}
    base = views_fingerprint(cameras(0.0))
    assert base == views_fingerprint(cameras(0.0))
    assert base["kind"] == "dataset" and base["cameras"] == 3 and base["source"] == "transforms_train.json"
    assert views_fingerprint(cameras(0.001)) != base and views_fingerprint(cameras(0.0, 80)) != base


def _fake_splat_transform(fail: set, calls: list):
    """Stands in for splat-transform: the "encoded" file is a copy of the input (decodes to itself)."""
    import shutil

    def run(cli, src, dst, *args, timeout_s=0.0):
        calls.append(dst.name)
        if any(dst.name.endswith(suffix) for suffix in fail):
            raise RuntimeError(f"splat-transform timed out after {timeout_s:.0f} s")
        shutil.copyfile(src, dst)
        return 0.01
    return run


def test_saved_peer_points_stay_in_the_reports_without_splat_transform(tmp_path, monkeypatch):
    """--only ngs, or a machine without npm, still reports the peers' saved points; a failure is saved
    and not retried until --force."""
    import core.splat_transform as st

    calls: list = []
    monkeypatch.setattr(st, "run_splat_transform", _fake_splat_transform({".sog"}, calls))
    monkeypatch.setattr(bench_run, "splat_transform_or_reason", lambda: (tmp_path / "cli.mjs", None))
    scene = _donut_subset(tmp_path, 300)
    out = check_output_dir(tmp_path / "out", force=False)
    settings = [("a", dict(n_clusters=2, hidden=8))]
    first = run_format_benchmark([scene], out, dataclasses.replace(_tiny_plan(settings), peers=True))["rows"]
    assert [(r["method"], r["note"][:7]) for r in first] == [
        ("ply", ""), ("compressed.ply", ""), ("spz", ""), ("sog", "failed:"), ("ngs", "")]
    assert first[1]["psnr"] == math.inf and first[1]["bytes"] == scene.stat().st_size  # a copy renders the same
    n_calls = len(calls)  # 2 per format that worked (encode, decode), 1 for the failed one
    assert n_calls == 5

    only_ngs = run_format_benchmark([scene], out, _tiny_plan(settings), overwrite=True)
    assert only_ngs["rows"] == first and len(calls) == n_calls
    md = (out / "results.md").read_text()
    assert "not run: not requested; the rows of its formats are results saved by an earlier run" in md
    assert "| donut | ahead" in md or "| donut | behind" in md  # the summary still compares with the peers

    monkeypatch.setattr(bench_run, "splat_transform_or_reason", lambda: (None, "npm is not on PATH"))
    no_npm = run_format_benchmark([scene], out, dataclasses.replace(_tiny_plan(settings), peers=True), overwrite=True)
    assert no_npm["rows"] == first and len(calls) == n_calls

    monkeypatch.setattr(bench_run, "splat_transform_or_reason", lambda: (tmp_path / "cli.mjs", None))
    forced = run_format_benchmark([scene], out, dataclasses.replace(_tiny_plan(settings), peers=True),
                                  overwrite=True, reuse=False)
    assert len(calls) == 2 * n_calls and forced["rows"][3]["note"].startswith("failed:")  # --force retries


def test_the_v2_curve_is_drawn_at_effort_fast_and_default():
    from core.bench.formats.plan import v2_settings
    from core.bench.formats.report import v2_curve
    from core.pipeline.config import EFFORTS

    pts = dict(v2_settings((38.0, 40.0), (40.0,)))
    assert list(pts) == ["v2-fast-38dB", "v2-fast-40dB", "v2-fast-40dB-vs-renders", "v2-38dB", "v2-40dB",
                         "v2-40dB-vs-renders"]
    assert pts["v2-fast-40dB"]["coadapt_iters"] == 0 and pts["v2-fast-40dB"]["effort"] == "fast"
    assert pts["v2-40dB"]["coadapt_iters"] == EFFORTS["default"]["coadapt_iters"]
    assert pts["v2-40dB"]["target_psnr"] == 40
    assert [v2_curve({"setting": n}) for n in ("m", "v2-fast-40dB", "v2-40dB")] == ["pure", "fast", "default"]


def test_only_runs_the_chosen_methods():
    assert (default_plan(only="ngs").peers, default_plan(only="ngs").ngs) == (False, True)
    assert (default_plan(only="peers").peers, default_plan(only="peers").ngs) == (True, False)
    assert (default_plan().peers, default_plan(quick=True).ngs) == (True, True)
    with pytest.raises(ValueError, match="only"):
        default_plan(only="sog")


def _ply_with_opacity(path, opacity: np.ndarray) -> None:
    from core.io.ply import graphdeco_table
    from tests.core.test_io_ply import random_scene

    names, table = graphdeco_table(random_scene(len(opacity), 1, seed=3))
    table[:, names.index("opacity")] = opacity
    head = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(table)}\n"
    head += "".join(f"property float {n}\n" for n in names) + "end_header\n"
    path.write_bytes(head.encode() + table.astype("<f4").tobytes())


def test_decoded_ply_infinite_opacity_becomes_plus_minus_40(tmp_path):
    """splat-transform writes +/-inf opacity for alpha bytes 255/0; our strict reader would refuse them."""
    path = tmp_path / "decoded.ply"
    _ply_with_opacity(path, np.array([np.inf, -np.inf, 0.5, -2.0], np.float32))
    scene = read_decoded_ply(path)
    assert scene.opacity_logits.tolist() == [40.0, -40.0, 0.5, -2.0]
    assert scene.sh_degree == 1
    _ply_with_opacity(path, np.array([np.nan, 1.0], np.float32))
    with pytest.raises(InputFileError, match="opacity"):
        read_decoded_ply(path)


def _r(method, setting, n_bytes, psnr, psnr_gt=None):
    return {"scene": "s", "method": method, "setting": setting, "bytes": n_bytes, "psnr": psnr, "psnr_gt": psnr_gt}


def test_verdict_takes_the_smallest_ngs_point_of_equal_quality():
    rows = [_r("ply", "original", 1000, None, 30.0), _r("sog", "", 300, 62.0, 29.9), _r("spz", "", 200, 38.0, 29.0),
            _r("ngs", "a", 80, 36.0, 28.0), _r("ngs", "b", 120, 40.5, 29.5), _r("ngs", "c", 400, 45.0, 29.95)]
    sog, spz = compare_with_peers(rows)
    assert (sog["target"], sog["match"]["setting"], sog["factor"]) == (40.0, "b", 2.5)  # capped at 40 dB
    assert (spz["target"], spz["match"]["setting"], spz["factor"]) == (38.0, "b", 200 / 120)
    assert verdict_line(sog).endswith("2.50x smaller at >= 40.00 dB: ahead, goal met")
    assert verdict_line(spz).endswith("short of the 2x goal")
    gt_sog, gt_spz = compare_with_peers(rows, "psnr_gt", cap=None)
    assert gt_sog["match"]["setting"] == "c" and verdict_line(gt_sog).endswith("1.33x larger at >= 29.90 dB: behind")
    assert gt_spz["match"]["setting"] == "b"
    (only,) = compare_with_peers([_r("sog", "", 300, 62.0), _r("ngs", "a", 80, 31.0)])
    assert only["match"] is None and "9.00 dB short: behind" in verdict_line(only)

    failed = dict(_r("spz", "", None, None), note="failed: timed out")  # a failed peer is not compared
    (c,) = compare_with_peers([_r("sog", "", 300, math.inf), failed, _r("ngs", "a", 300, 40.0)])
    assert c["peer"] == "sog" and c["target"] == 40.0  # identical renders (inf dB): capped like any other
    assert verdict_line(c).endswith("1.00x smaller at >= 40.00 dB: ahead, short of the 2x goal")  # same size
    (none,) = compare_with_peers([_r("sog", "", 300, 62.0)])
    assert verdict_line(none).endswith("no .ngs point to compare")


def test_scratch_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = tmp_path / f".work-donut-{int(done.stdout)}", tmp_path / f".work-lego-{os.getpid()}"
    for d in (dead, live):
        d.mkdir()
        (d / "donut.ply").write_text("scratch")
    (tmp_path / ".work-odd-name").mkdir()
    assert remove_stale_work_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.is_dir() and (tmp_path / ".work-odd-name").is_dir()


def test_sigterm_stops_a_run_cleanly(tmp_path):
    """``kill`` is handled like Ctrl-C: exit status 130, the scratch folder removed."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT

    scene = _donut_subset(tmp_path, 2000)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), "bench", "formats", "--quick", "--only", "ngs",
                             "--scenes", str(scene), "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".work-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and not list(out.glob(".work-*"))


def test_summary_table_says_ahead_or_behind_per_scene_and_peer():
    rows = [_r("ply", "original", 1000, None, 30.0), _r("sog", "", 300, 62.0, 29.9), _r("spz", "", 200, 38.0, 29.0),
            _r("ngs", "a", 80, 36.0, 28.0), _r("ngs", "b", 120, 40.5, 29.5), _r("ngs", "c", 400, 45.0, 29.95)]
    rows += [dict(r, scene="t", psnr_gt=None) for r in rows if r["method"] != "ngs"]
    rows += [dict(_r("ngs", "z", 50, 31.0), scene="t")]
    table = summary_table(rows)
    assert table[0] == "| scene | vs sog | vs spz |"
    assert table[2] == "| s | ahead: 2.50x smaller (b) - goal met | ahead: 1.67x smaller (b) |"
    assert table[3] == "| s (vs dataset images) | behind: 1.33x larger (c) | ahead: 1.67x smaller (b) |"
    assert table[4] == ("| t | behind: no point >= 40.00 dB (best 31.00 dB, z) "
                        "| behind: no point >= 38.00 dB (best 31.00 dB, z) |")
    assert len(table) == 5  # t has no dataset images: no second row
    lone = summary_table(rows + [dict(_r("ply", "original", 1000, None), scene="u"),
                                 dict(_r("ngs", "a", 9, 30.0), scene="u")])
    assert lone[5] == "| u | no result | no result |"  # a scene without peer results is named, not dropped
    assert summary_table([r for r in rows if r["method"] in ("ply", "ngs")]) == []
    md = format_markdown([dict(r, detail="", note="", ssim=None, ssim_gt=None, ratio=None, encode_s=None,
                               decode_s=None) for r in rows])
    assert "## Summary" in md and table[2] in md.splitlines()


def test_an_unreadable_scene_is_named_and_skipped_and_the_others_run(tmp_path, monkeypatch, capsys):
    good = _donut_subset(tmp_path, 300)
    bad = tmp_path / "broken.ply"
    bad.write_bytes(good.read_bytes()[:900])  # cut short
    out = check_output_dir(tmp_path / "out", force=False)
    result = run_format_benchmark([bad, good], out, _tiny_plan([("a", dict(n_clusters=2, hidden=8))]))
    assert [problem.split(": ")[0] for problem in result["failed_scenes"]] == [str(bad)]
    assert [(r["scene"], r["method"]) for r in result["rows"]] == [("donut", "ply"), ("donut", "ngs")]
    md = (out / "results.md").read_text()
    assert f"Scenes not run (could not be read):\n\n- {bad}: " in md and "## donut" in md

    def fake_run(*args, **kwargs):
        return dict(result, failed_scenes=[f"{bad}: truncated"])
    monkeypatch.setattr(bench_run, "run_format_benchmark", fake_run)
    assert main(["bench", "formats", "--scenes", str(good), "--out", str(out)]) == 2  # scripts notice
    assert f"error: {bad}: truncated (scene skipped)" in capsys.readouterr().err
