"""What users of splat editors expect, through the real window (issue 14): a render-only still at a chosen size
(File > Save render…, Shift+F12), the background colour (View > Background), the About box (Help) and Export as
SPZ (File), on the small donut scene."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
import pytest
from PIL import Image

from app import dialogs
from app.main_window import BACKGROUND_KEY
from tests.app.conftest import open_and_settle, settle


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def background_action(win, name: str):
    return next(a for a in win.background_group.actions() if a.text().startswith(name))


def save_render(win, qtbot, monkeypatch, path, width, height, side, asked=None):
    """Save render… through the action with the dialogs answered; waits until it has ended."""
    monkeypatch.setattr(dialogs, "ask_render_options",
                        lambda parent, view_size, sides, max_size: (asked.append((view_size, sides))
                                                                    if asked is not None else None)
                        or (width, height, side))
    monkeypatch.setattr(dialogs, "ask_save_path", lambda parent, title, suggested, flt: str(path))
    win.actions_by_name["save_render"].trigger()
    qtbot.waitUntil(lambda: win.files.render_progress is None, timeout=120_000)


# -- background ---------------------------------------------------------------------------------------
def test_background_reaches_both_sides_and_is_remembered(compressed_window, qtbot, monkeypatch):
    win = compressed_window
    try:
        for name, rgb in (("Black", (0, 0, 0)), ("Grey", (128, 128, 128))):
            background_action(win, name).trigger()
            settle(qtbot, win)
            for side in (0, 1):
                img = win.view.image(side)
                assert tuple(img[0, 0]) == rgb and tuple(img[-1, -1]) == rgb, (name, side)
            assert win.settings.value(BACKGROUND_KEY) == "#{:02x}{:02x}{:02x}".format(*rgb)
            assert background_action(win, name).isChecked()
        monkeypatch.setattr(dialogs, "ask_color", lambda parent, initial: (0.2, 0.4, 0.6))
        background_action(win, "Custom").trigger()
        settle(qtbot, win)
        qtbot.waitUntil(lambda: win.viewport.last_result.ssim is not None, timeout=60_000)
        a, b = win.view.image(0), win.view.image(1)
        assert tuple(a[0, 0]) == tuple(b[0, 0]) == (51, 102, 153)
        assert win.settings.value(BACKGROUND_KEY) == "#336699"
        assert background_action(win, "Custom").isChecked() and "#336699" in background_action(win, "Custom").text()
        # the view's PSNR compares the two sides as drawn, on the same background
        from app.render_thread import view_psnr

        assert win.viewport.last_result.psnr == pytest.approx(view_psnr(a, b))
        monkeypatch.setattr(dialogs, "ask_color", lambda parent, initial: None)  # cancelled: nothing changes
        background_action(win, "Custom").trigger()
        assert win.viewport.background == pytest.approx((0.2, 0.4, 0.6), abs=1e-6)
    finally:
        background_action(win, "White").trigger()
        settle(qtbot, win)
    assert tuple(win.view.image(1)[0, 0]) == (255, 255, 255)


def test_a_new_window_starts_on_the_remembered_background(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from tests.app.conftest import _record_errors, close_window, make_window

    _record_errors(monkeypatch, [])
    ini = tmp_path / "settings.ini"
    QSettings(str(ini), QSettings.Format.IniFormat).setValue(BACKGROUND_KEY, "#000000")
    win = make_window(ini)
    qtbot.addWidget(win)
    try:
        assert win.viewport.background == (0.0, 0.0, 0.0) and background_action(win, "Black").isChecked()
    finally:
        close_window(win, qtbot.wait)


# -- render-only stills --------------------------------------------------------------------------------
def test_save_render_side_by_side_matches_each_side(compressed_window, qtbot, monkeypatch, tmp_path):
    win = compressed_window
    settle(qtbot, win)
    asked = []
    suggested = []
    ask = dialogs.ask_save_path
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a: suggested.append(a[2]) or "")
    monkeypatch.setattr(dialogs, "ask_render_options", lambda parent, view_size, sides, max_size: (640, 360, "AB"))
    win.actions_by_name["save_render"].trigger()  # cancelled at the file dialog: nothing happens
    assert suggested and suggested[0].endswith("donut-small-AB-640x360.png") and win.files.render_progress is None
    monkeypatch.setattr(dialogs, "ask_save_path", ask)

    out = tmp_path / "both.png"
    save_render(win, qtbot, monkeypatch, out, 640, 360, "AB", asked)
    view_size, sides = asked[0]
    assert view_size == (win.view.width(), win.view.height()) and set(sides) == {"A", "B", "AB"}
    both = read_png(out)
    assert both.shape == (360, 640, 3)
    for side, half in (("A", both[:, :320]), ("B", both[:, 320:])):
        alone = tmp_path / f"{side}.png"
        save_render(win, qtbot, monkeypatch, alone, 320, 360, side)
        np.testing.assert_array_equal(read_png(alone), half)  # each half is that side's render
        assert (half < 250).any(axis=2).mean() > 0.02  # not blank: the donut on white
    assert not np.array_equal(both[:, :320], both[:, 320:])  # B is not A
    assert not win.errors, win.errors


def test_save_render_at_the_views_size_is_the_view(compressed_window, qtbot, monkeypatch, tmp_path):
    """Same camera pose and field of view: at a pane's size the still is the pixels the view shows."""
    win = compressed_window
    settle(qtbot, win)
    w, h = win.view.pane_size()
    out = tmp_path / "view-b.png"
    save_render(win, qtbot, monkeypatch, out, w, h, "B")
    np.testing.assert_array_equal(read_png(out), win.view.image(1))


def test_save_render_full_hd_and_no_replacing_without_asking(compressed_window, qtbot, monkeypatch, tmp_path):
    win = compressed_window
    out = tmp_path / "hd.png"
    save_render(win, qtbot, monkeypatch, out, 1920, 1080, "B")
    img = read_png(out)
    assert img.shape == (1080, 1920, 3)
    assert img.std() > 5 and (img < 250).any(axis=2).mean() > 0.02  # not blank
    assert "1920×1080" in win.statusBar().currentMessage()
    before = out.read_bytes()
    asked = []
    monkeypatch.setattr(dialogs, "ask_overwrite", lambda parent, p: asked.append(p) or False)
    save_render(win, qtbot, monkeypatch, out, 320, 200, "A")
    assert asked == [out] and out.read_bytes() == before  # refused: untouched
    monkeypatch.setattr(dialogs, "ask_overwrite", lambda parent, p: True)
    save_render(win, qtbot, monkeypatch, out, 320, 200, "A")
    assert read_png(out).shape == (200, 320, 3)


def test_cancelled_render_writes_nothing(compressed_window, qtbot, tmp_path):
    win = compressed_window
    out = tmp_path / "cancelled.png"
    assert win.files.start_render(1920, 1080, "AB", out)
    win.files.cancel_render()  # as the progress dialog's Cancel does
    qtbot.waitUntil(lambda: win.files.render_progress is None, timeout=120_000)
    assert not out.exists() and not list(tmp_path.iterdir())
    assert "cancelled" in win.statusBar().currentMessage()
    assert win.files.progress_dialog is None and not win.errors


def test_render_sizes_out_of_range_are_refused(compressed_window, tmp_path):
    win = compressed_window
    n = len(win.errors)
    assert not win.files.start_render(16385, 100, "A", tmp_path / "big.png")
    assert win.errors[n:] and "16384" in win.errors[n][1]
    del win.errors[n:]


# -- About --------------------------------------------------------------------------------------------
def test_about_lists_the_versions(window, qtbot, monkeypatch, small_scene_file):
    import constriction  # noqa: F401 - the version the About box names must be the installed one
    import numba
    import PySide6
    import torch
    import zstandard
    from PySide6.QtCore import qVersion

    open_and_settle(qtbot, window, small_scene_file)
    from PySide6.QtWidgets import QMenu

    shown = []
    monkeypatch.setattr(dialogs, "show_about", lambda parent, title, text: shown.append((title, text)))
    help_menu = next(m for m in window.menuBar().findChildren(QMenu) if m.title() == "&Help")
    next(a for a in help_menu.actions() if a.text() == "&About NeuralGS Studio").trigger()
    title, text = shown[0]
    assert title == "About NeuralGS Studio"
    expected = [metadata.version("neuralgs-studio"), platform.python_version(), PySide6.__version__, qVersion(),
                torch.__version__, np.__version__, numba.__version__, metadata.version("constriction"),
                zstandard.__version__, "MIT"]
    try:
        import gsplat

        expected.append(gsplat.__version__)
    except ImportError:
        expected.append("gsplat")
    for version in expected:
        assert version in text, version
    assert ("CUDA not available" in text) != torch.cuda.is_available()
    backend = window.viewport.last_result.backend
    assert {"gl": "OpenGL", "cpu": "numba CPU"}[backend] in text


# -- Export as SPZ ------------------------------------------------------------------------------------
def export_spz(win, qtbot, monkeypatch, path, overwrite=None):
    seen = {}

    def ask(parent, title, suggested, flt):
        seen.update(title=title, suggested=suggested, filter=flt)
        return str(path)

    monkeypatch.setattr(dialogs, "ask_save_path", ask)
    if overwrite is not None:
        monkeypatch.setattr(dialogs, "ask_overwrite", lambda parent, p: seen.setdefault("asked", p) and overwrite)
    win.actions_by_name["export_spz"].trigger()
    qtbot.waitUntil(lambda: not win.tasks.busy, timeout=60_000)
    return seen


def read_spz_file(path):
    from core.io.spz import read_spz

    return read_spz(path.read_bytes(), path)


def test_export_spz_of_the_original_and_reopen(window, qtbot, monkeypatch, small_scene_file, tmp_path):
    open_and_settle(qtbot, window, small_scene_file)
    assert window.actions_by_name["export_spz"].isEnabled() and not window.actions_by_name["export_ngs"].isEnabled()
    out = tmp_path / "a"
    seen = export_spz(window, qtbot, monkeypatch, out)
    assert "original scene A" in seen["title"] and "*.spz" in seen["filter"]
    assert seen["suggested"].endswith("donut-small.spz")
    written = tmp_path / "a.spz"  # the suffix is added
    scene, encoding, _ = read_spz_file(written)
    assert scene.num_gaussians == 3042 and encoding.startswith("spz v4")
    assert str(written) in window.statusBar().currentMessage()

    open_and_settle(qtbot, window, written)  # .spz opens through the File menu's opener
    assert window.session.original.scene.num_gaussians == 3042 and not window.errors
    # the input is never proposed: a -2 instead; an existing file is replaced only after asking
    before = written.read_bytes()
    seen = export_spz(window, qtbot, monkeypatch, written, overwrite=False)
    assert seen["suggested"] == str(written.with_name("a-2.spz")) and seen["asked"] == written
    assert written.read_bytes() == before and not window.errors


def test_export_spz_of_the_compressed_scene(compressed_window, qtbot, monkeypatch, tmp_path):
    win = compressed_window
    cs = win.session.compressed
    out = tmp_path / "b.spz"
    seen = export_spz(win, qtbot, monkeypatch, out)
    assert "compressed scene B" in seen["title"] and seen["suggested"].endswith("donut-small-neuralgs.spz")
    scene, _, _ = read_spz_file(out)
    assert scene.num_gaussians == cs.scene.num_gaussians
    np.testing.assert_allclose(scene.means.numpy(), cs.scene.means.numpy(), atol=2.0 ** -12)
    assert not win.errors, win.errors


def test_scene_dialog_offers_the_interop_formats():
    for pattern in ("*.spz", "*.sog", "meta.json", "*.ply", "*.splat", "*.ngs"):
        assert pattern in dialogs.SCENE_FILTER.split(";;")[0]
