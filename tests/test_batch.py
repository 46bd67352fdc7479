"""``main.py batch`` on Ray, end to end: an embedded Ray, a real two-node cluster on 127.0.0.1, a worker killed
mid-task, Ctrl-C, ``--resume`` (tiny scenes and settings; every Ray this file starts is stopped).

Scenes: 1,500-Gaussian subsets of the shared donut, sh3-capture (SH 3) and guitar scenes (the demo donut with
other seeds where the shared data is missing) plus a bad file (a PLY header declaring no properties).
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import SHARED_DATA, shared_path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "donut.ply"
FAST = ["--preset", "preview", "--up", "+z", "--fit-iters", "30", "--finetune-iters", "4", "--views", "4",
        "--view-size", "32", "--eval-size", "32", "--clusters", "3", "--effort", "fast"]
RAY = Path(sys.executable).with_name("ray")


def run(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def subset(src: Path, dst: Path, seed: int, n: int = 1500) -> Path:
    from core.io import write_ply
    from core.io.scene_files import load_scene_file

    scene = load_scene_file(src).scene
    idx = torch.randperm(scene.num_gaussians, generator=torch.Generator().manual_seed(seed))[:n]
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_ply(scene.subset(idx), dst)
    return dst


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """IN/donut.ply, IN/sub/sh3.ply, IN/sub/deeper/guitar.ply and IN/bad.ply (a PLY header without properties)."""
    root = tmp_path_factory.mktemp("in")
    shared = SHARED_DATA / "scenes"
    sources = [("donut.ply", "donut.ply"), ("sh3-capture.ply", "sub/sh3.ply"),
               ("guitar.compressed.ply", "sub/deeper/guitar.ply")]
    for seed, (name, rel) in enumerate(sources):
        subset(shared / name if (shared / name).exists() else DEMO, root / rel, seed)
    (root / "bad.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nend_header\n")
    return root


@pytest.fixture(scope="module")
def embedded(scenes, tmp_path_factory):
    """One batch on the embedded Ray over the whole folder: (completed process, OUTDIR)."""
    out = tmp_path_factory.mktemp("out") / "batch"
    r = run("batch", scenes, "-r", "-o", out, *FAST)
    return r, out


def manifest(out: Path) -> tuple[list[dict], dict]:
    rows = list(csv.DictReader((out / "batch.csv").read_text().splitlines()))
    return rows, json.loads((out / "batch.json").read_text())


def test_embedded_batch_writes_the_good_scenes_and_records_the_bad_one(embedded, scenes):
    r, out = embedded
    assert r.returncode == 3, r.stderr  # some failed: the documented status
    rows, doc = manifest(out)
    by_output = {row["output"]: row for row in rows}
    assert set(by_output) == {"donut.ngs", "sub/sh3.ngs", "sub/deeper/guitar.ngs", "bad.ngs"}  # the input tree
    for name in ("donut.ngs", "sub/sh3.ngs", "sub/deeper/guitar.ngs"):
        row = by_output[name]
        assert row["status"] == "ok" and row["error"] == ""
        assert int(row["bytes"]) == (out / name).stat().st_size > 0
        assert float(row["psnr"]) > 10 and float(row["ssim"]) > 0 and row["against"] == "renders"
        assert float(row["seconds"]) > 0 and row["node_ip"] == "127.0.0.1" and len(row["node_id"]) > 16
        assert float(row["ratio"]) == pytest.approx(int(row["original_bytes"]) / int(row["bytes"]), rel=1e-4)
        assert re.fullmatch(r"[0-9a-f]{16}", row["settings_hash"])
    bad = by_output["bad.ngs"]
    assert bad["status"] == "failed" and str(scenes / "bad.ply") in bad["error"] and "\n" not in bad["error"]
    assert not (out / "bad.ngs").exists()
    assert doc["totals"] == {"ok": 3, "failed": 1, "cancelled": 0, "resumed": 0}
    assert [s["output"] for s in doc["scenes"]] == [row["output"] for row in rows]
    assert doc["ray"]["embedded"] and [n["node_ip"] for n in doc["ray"]["nodes"]] == ["127.0.0.1"]
    assert "batch: 3 of 4 scenes ok" in r.stdout
    assert "FAILED" in r.stderr and "done," in r.stderr  # a line per finished scene, the overall bar
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_each_output_is_byte_identical_to_a_serial_compress(embedded, scenes, tmp_path):
    _, out = embedded
    for rel in ("donut", "sub/sh3", "sub/deeper/guitar"):
        serial = tmp_path / (rel.replace("/", "_") + ".ngs")
        r = run("compress", scenes / f"{rel}.ply", "-o", serial, *FAST, "--threads", "1")
        assert r.returncode == 0, r.stderr
        assert (out / f"{rel}.ngs").read_bytes() == serial.read_bytes(), rel


def test_resume_recomputes_nothing_and_refuses_to_overwrite_without_it(embedded, scenes):
    _, out = embedded
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.ngs")}
    r = run("batch", scenes, "-r", "-o", out, *FAST)
    assert r.returncode == 2 and "already exists" in r.stderr  # neither --resume nor --force
    r = run("batch", scenes, "-r", "-o", out, *FAST, "--resume", "--json")
    assert r.returncode == 3, r.stderr  # the bad scene is tried again and fails again
    summary = json.loads(r.stdout)
    assert (summary["ok"], summary["resumed"], summary["failed"]) == (3, 3, 1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ngs")} == before
    rows, _ = manifest(out)
    assert sorted(row["resumed"] for row in rows) == ["no", "yes", "yes", "yes"]


def test_a_worker_killed_mid_task_is_retried_and_a_changed_setting_recomputes(embedded, scenes, tmp_path):
    _, first = embedded
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    env = {**os.environ, "NEURALGS_BATCH_CRASH_MARKER": str(marker)}
    r = run("batch", scenes / "donut.ply", "-o", out, *FAST, env=env)
    assert r.returncode == 0, r.stderr
    assert marker.exists()  # the first attempt created it and died (os._exit)
    assert (out / "donut.ngs").read_bytes() == (first / "donut.ngs").read_bytes()  # the retry's, complete
    stamp = (out / "donut.ngs").stat().st_mtime_ns
    r = run("batch", scenes / "donut.ply", "-o", out, *FAST, "--resume", "--seed", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["resumed"] == 0 and (out / "donut.ngs").stat().st_mtime_ns != stamp


def test_a_dataset_beside_the_scene_travels_with_it_and_gives_the_same_bytes(tmp_path):
    """lego.ply with lego.dataset/ beside it: the task gets the dataset's files (not the driver's disk), measures
    against its images, and writes what compress --dataset writes."""
    lego, dataset = shared_path("scenes", "lego-3dgs.ply"), shared_path("datasets", "lego")
    scene = subset(lego, tmp_path / "in" / "lego.ply", 0)
    (tmp_path / "in" / "lego.dataset").symlink_to(dataset, target_is_directory=True)
    r = run("batch", tmp_path / "in", "-o", tmp_path / "out", *FAST)
    assert r.returncode == 0, r.stderr
    rows, _ = manifest(tmp_path / "out")
    assert rows[0]["against"] == "images" and rows[0]["dataset"] == str(tmp_path / "in" / "lego.dataset")
    serial = tmp_path / "serial.ngs"
    r = run("compress", scene, "-o", serial, *FAST, "--threads", "1", "--dataset", tmp_path / "in" / "lego.dataset")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "lego.ngs").read_bytes() == serial.read_bytes()


def test_ctrl_c_cancels_writes_no_partial_file_and_keeps_the_manifest(scenes, tmp_path):
    plan = tmp_path / "plan.csv"
    plan.write_text(f"scene,options\n{scenes / 'sub' / 'sh3.ply'},--fit-iters 100000\n")  # one scene that lasts
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "batch", str(scenes / "donut.ply"),
                             str(scenes / "sub" / "deeper" / "guitar.ply"), "--plan", str(plan), "-o", str(out),
                             *FAST], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline and sum(line.startswith("ok ") for line in seen) < 2:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
    assert sum(line.startswith("ok ") for line in seen) == 2, "".join(seen)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["batch.csv", "batch.json", "donut.ngs", "guitar.ngs"]  # no partial sh3.ngs, no temporary file
    rows, doc = manifest(out)
    assert {row["output"]: row["status"] for row in rows} == \
        {"donut.ngs": "ok", "guitar.ngs": "ok", "sh3.ngs": "cancelled"}
    assert doc["totals"]["cancelled"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# `ray start` for the second node, on 127.0.0.1: Ray turns a 127.0.0.1 address into the machine's routable one
# unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and in that mode its CLI refuses to join a cluster; this runs the
# same CLI with the refusal and the rewrite switched off in its own process (its children keep the loopback mode).
JOIN_NODE = ("import sys; import ray._private.ray_constants as c; import ray._private.services as s; "
             "c.ENABLE_RAY_CLUSTER = True; s.resolve_ip_for_localhost = lambda host: host; "
             "from ray.scripts.scripts import main; sys.argv = ['ray'] + sys.argv[1:]; main()")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a second node (1 CPU each) on 127.0.0.1; ``ray stop --force`` afterwards whatever happens."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        head = subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                               "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
                              capture_output=True, text=True, timeout=180, env=env)
        assert head.returncode == 0, head.stdout + head.stderr
        node = subprocess.run([sys.executable, "-c", JOIN_NODE, "start", f"--address={address}",
                               "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"],
                              capture_output=True, text=True, timeout=180, env=env)
        assert node.returncode == 0, node.stdout + node.stderr
        yield address, env
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_a_two_node_cluster_on_loopback_runs_scenes_on_both_nodes(cluster, scenes, embedded, tmp_path):
    address, env = cluster
    _, first = embedded
    out = tmp_path / "out"
    r = run("batch", scenes / "donut.ply", scenes / "sub", "-o", out, *FAST, "--ray-address", address, env=env)
    assert r.returncode == 0, r.stderr
    rows, doc = manifest(out)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert len({row["node_id"] for row in rows}) == 2  # both nodes used
    assert {row["node_ip"] for row in rows} == {"127.0.0.1"}
    assert len(doc["ray"]["nodes"]) == 2 and not doc["ray"]["embedded"]
    assert (out / "donut.ngs").read_bytes() == (first / "donut.ngs").read_bytes()  # same bytes on any node


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


EMBEDDED_PROBE = """
import json, os, sys
from core.batch import runtime
info = runtime.start(None)
import ray
from ray._common.usage import usage_lib
env = {k: os.environ.get(k) for k in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
facts = {"env": env, "node_ips": [n["NodeManagerAddress"] for n in info.nodes],
         "dashboard": ray._private.worker._global_node._ray_params.include_dashboard,
         "usage_stats": usage_lib.usage_stats_enabled()}
print(json.dumps(facts), flush=True)
sys.stdin.readline()
runtime.stop()
"""


def _loopback(addr: str) -> bool:
    return addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]")


def test_the_embedded_ray_binds_and_talks_on_127_0_0_1_only():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.Popen([sys.executable, "-c", EMBEDDED_PROBE], cwd=REPO, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        facts = json.loads(proc.stdout.readline())
        assert facts["env"] == {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        assert facts["node_ips"] == ["127.0.0.1"] and facts["dashboard"] is False and facts["usage_stats"] is False
        pids = _descendants(proc.pid) | {proc.pid}
        ss = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, timeout=30).stdout.splitlines()
        mine = [line.split() for line in ss if any(f"pid={p}," in line for p in pids)]
        assert any(f[0] == "LISTEN" for f in mine), "no listening socket of the embedded Ray found"
        for fields in mine:
            local, peer = fields[3], fields[4]
            assert _loopback(local), fields
            assert fields[0] == "LISTEN" or _loopback(peer), fields
    finally:
        proc.communicate("\n", timeout=120)


def test_runtime_settings_and_address_rules(monkeypatch):
    from core.batch import runtime

    kw = runtime.embedded_init_kwargs(cpus=2)
    assert kw["address"] == "local" and kw["include_dashboard"] is False and kw["_node_ip_address"] == "127.0.0.1"
    assert runtime.OBJECT_STORE_MIN <= kw["object_store_memory"] <= runtime.OBJECT_STORE_MAX
    assert runtime.object_store_bytes(24 * 2**30) == 4 * 2**30 and runtime.object_store_bytes(2**30) == 256 * 2**20
    assert runtime.is_loopback("127.0.0.1:6379") and runtime.is_loopback("localhost:1") and runtime.is_loopback(None)
    assert not runtime.is_loopback("10.0.0.5:6379") and not runtime.is_loopback("ray://head:10001")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert runtime.resolve_address(None) == "127.0.0.1:1" and runtime.resolve_address("a:2") == "a:2"


def test_inputs_mirror_the_tree_find_datasets_and_refuse_clashes(tmp_path):
    from core.batch.inputs import check_outputs, collect, scene_stem
    from core.errors import UsageError

    for rel in ("a.ply", "x/b.compressed.ply", "x/y/c.spz", "x/notes.txt", "x/y/c.dataset/points.ply"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    out = tmp_path / "out"
    flat = collect([str(tmp_path)], False, out)
    assert [j.output.as_posix() for j in flat] == ["a.ngs"]
    deep = collect([str(tmp_path)], True, out)
    assert [j.output.as_posix() for j in deep] == ["a.ngs", "x/b.ngs", "x/y/c.ngs"]
    assert deep[2].dataset == tmp_path / "x" / "y" / "c.dataset"  # the folder beside it, never a scene itself
    globbed = collect([str(tmp_path / "x" / "**" / "*.spz"), str(tmp_path / "missing.ply")], False, out)
    assert globbed[0].output.as_posix() == "y/c.ngs" and globbed[1].error.endswith("no such file or folder")
    assert scene_stem("g.compressed.ply") == "g" and scene_stem("s.sog") == "s" and scene_stem("x.bin") == "x"
    (tmp_path / "a.splat").write_bytes(b"")
    with pytest.raises(UsageError, match="both be written"):
        check_outputs(collect([str(tmp_path / "a.ply"), str(tmp_path / "a.splat")], False, out), out)
    (tmp_path / "a.ngs").write_bytes(b"")
    with pytest.raises(UsageError, match="would replace the input"):
        check_outputs(collect([str(tmp_path / "a.ngs")], False, tmp_path), tmp_path)


def test_a_plan_sets_per_scene_datasets_and_options(tmp_path):
    from core.batch.inputs import collect
    from core.batch.plan import merge, read_plan
    from core.cli.batch import scene_args, scene_options_parser
    from core.cli.entry import build_parser

    (tmp_path / "s").mkdir()
    for name in ("a.ply", "b.ply"):
        (tmp_path / "s" / name).write_bytes(b"")
    (tmp_path / "lego").mkdir()
    plan = tmp_path / "plan.csv"
    plan.write_text("scene,dataset,options\ns/a.ply,lego,--target-psnr 38 --up +z\ns/b.ply,none,\n")
    jobs = merge(collect([str(tmp_path / "s")], False, tmp_path / "out"), read_plan(plan))
    assert [(j.output.as_posix(), j.dataset, j.options) for j in jobs] == [
        ("a.ngs", tmp_path / "lego", ("--target-psnr", "38", "--up", "+z")), ("b.ngs", None, ())]
    args = build_parser().parse_args(["batch", "x", "-o", "y", "--effort", "fast", "--up=-y"])
    mine = scene_args(args, jobs[0].options, scene_options_parser(), "row 2")
    assert (mine.target_psnr, mine.up, mine.effort) == (38.0, (0.0, 0.0, 1.0), "fast")
    assert args.up == (0.0, -1.0, 0.0)  # the global options stay as they were for the other scenes
