"""``python main.py`` starts the application; ``--screenshot OUT.png`` renders the window without a display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from app.main import looks_like_gui

ROOT = Path(__file__).resolve().parents[2]


def run_main(*args, env_extra=None, drop=(), timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_screenshot_flag_renders_the_window_to_a_png(tmp_path, small_scene_file):
    out = tmp_path / "window.png"
    proc = run_main("--screenshot", out, "--window-size", "900x600", small_scene_file, drop=("QT_QPA_PLATFORM",))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[1] == 900 and 600 <= img.shape[0] < 700  # the docks' minimum height may win
    assert f"window {img.shape[1]}x{img.shape[0]}" in proc.stdout
    view = img[60:400, 10:300]  # the A pane: the donut on a white background
    assert (view.min(axis=2) > 245).mean() > 0.3 and (view.min(axis=2) < 200).mean() > 0.02
    again = run_main("--screenshot", out, small_scene_file)
    assert again.returncode == 2 and "already exists" in again.stderr  # never replaced silently
    forced = run_main("--screenshot", out, "--force", "--window-size", "1200x800", small_scene_file)
    assert forced.returncode == 0 and Image.open(out).size == (1200, 800)


def test_screenshot_of_a_bad_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_text("not a ply")
    out = tmp_path / "never.png"
    proc = run_main("--screenshot", out, bad)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_without_a_display_the_message_names_the_screenshot_flag():
    proc = run_main(drop=("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"), timeout=60)
    assert proc.returncode == 2
    assert "--screenshot OUT.png" in proc.stderr


def test_routing():
    cmds = {"info", "render", "compress", "demo", "bench"}
    assert looks_like_gui([], cmds) and looks_like_gui(["x.ply"], cmds) and looks_like_gui(["a.ngs", "-v"], cmds)
    assert looks_like_gui(["--screenshot=o.png"], cmds) and looks_like_gui(["--screenshot", "o.png", "s.splat"], cmds)
    assert not looks_like_gui(["info", "x.ply"], cmds) and not looks_like_gui(["--help"], cmds)
    assert not looks_like_gui(["compresss"], cmds)  # a typo of a command: the CLI explains
