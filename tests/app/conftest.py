"""Application tests: offscreen Qt, a small real scene (a donut subset), a tiny compression config and a
window fixture that fails a test leaving a compression, render or task thread running.

No test reaches the real user's settings (recent files, the last export folder, the ETA's weights): every
QSettings of this process and of the processes the tests start (``main.py`` runs) lives in a temporary folder
(``XDG_CONFIG_HOME`` and ``QSettings.setPath``, set here before anything creates one).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SETTINGS_HOME = tempfile.mkdtemp(prefix="neuralgs-test-settings-")
os.environ["XDG_CONFIG_HOME"] = _SETTINGS_HOME  # inherited by main.py subprocesses
atexit.register(shutil.rmtree, _SETTINGS_HOME, True)


def _isolate_settings() -> None:
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, _SETTINGS_HOME)


_isolate_settings()

ROOT = Path(__file__).resolve().parents[2]
DONUT = ROOT / "resources" / "demo" / "donut.ply"

# A compression that takes a few seconds on 2 busy cores: every stage runs, nothing is big.
TINY = dict(n_views=4, n_test_views=1, image_size=32, eval_size=32, kmeans_iters=3, pe_freqs=2, log_every=2)
TINY_PANEL = dict(n_clusters=3, fit_iters=20, finetune_iters=4, hidden=8, prune_ratio=0.4, lambda_freq=0.01)


@pytest.fixture(scope="session")
def small_scene_file(tmp_path_factory) -> Path:
    """Every 15th Gaussian of the demo donut (about 3,000), written as a graphdeco .ply."""
    import torch

    from core.io import read_scene, write_ply

    scene = read_scene(DONUT)
    path = tmp_path_factory.mktemp("scenes") / "donut-small.ply"
    write_ply(scene.subset(torch.arange(0, scene.num_gaussians, 15)), path)
    return path


def pump_until(qtbot, condition, timeout_s: float = 60.0, what: str = "condition") -> None:
    """Process events until ``condition()`` is true (pytest fails after ``timeout_s``)."""
    qtbot.waitUntil(condition, timeout=int(timeout_s * 1000))


def settle(qtbot, win, timeout_s: float = 60.0) -> None:
    """Wait until no task, no compression and no render is pending and the last full frame is shown."""
    qtbot.waitUntil(lambda: not win.tasks.busy and win.compression.worker is None and not win.viewport.pending
                    and win.viewport.thread.idle(), timeout=int(timeout_s * 1000))
    qtbot.wait(50)  # the last queued result reaches the view


WINDOW_SIZE = (960, 640)  # small renders: the tests run on a busy 2-core machine


def make_window(settings_path: Path):
    """A MainWindow with its own settings file, tiny compression settings, errors recorded in ``win.errors``
    (``app.dialogs.show_error`` must be replaced by the caller: see the fixtures)."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    win = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    win.session.config_overrides = dict(TINY)
    win.panel.set_values(TINY_PANEL)
    win.resize(*WINDOW_SIZE)
    win.show()
    return win


def close_window(win, wait) -> None:
    """Close ``win`` (discarding any result or run: the test is over) and fail when it has not closed for good,
    or its render or compression thread is still running, after 30 s."""
    from app import dialogs

    def worker_running() -> bool:  # the worker is deleted once it has ended: ask the controller
        worker = win.compression.worker
        return worker is not None and worker.isRunning()

    ask = dialogs.ask_discard
    dialogs.ask_discard = lambda *a, **k: "discard"
    try:
        win.close()
    finally:
        dialogs.ask_discard = ask
    deadline = time.monotonic() + 30
    while (not win.shutdown_complete or win.viewport.thread.isRunning() or worker_running()) and \
            time.monotonic() < deadline:
        wait(20)
    assert not win.viewport.thread.isRunning(), "the render thread was left running"
    assert not worker_running(), "a compression thread was left running"
    assert win.shutdown_complete, "the window did not close"


def _record_errors(monkeypatch_or_mp, errors: list) -> None:
    """Errors into ``errors``; the questions before work is thrown away answer Discard, and a .ngs of another
    scene is not opened (tests that ask them replace these)."""
    from app import dialogs

    monkeypatch_or_mp.setattr(dialogs, "show_error", lambda parent, title, message: errors.append((title, message)))
    monkeypatch_or_mp.setattr(dialogs, "ask_discard", lambda *a, **k: "discard")
    monkeypatch_or_mp.setattr(dialogs, "ask_foreign_ngs", lambda *a, **k: "cancel")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A fresh MainWindow; errors recorded in ``window.errors`` instead of a modal dialog."""
    errors: list[tuple[str, str]] = []
    _record_errors(monkeypatch, errors)
    win = make_window(tmp_path / "settings.ini")
    win.errors = errors
    qtbot.addWidget(win)
    yield win
    close_window(win, qtbot.wait)


def pump(condition, timeout_s: float = 120.0) -> None:
    """Process Qt events until ``condition()`` (for module-scoped fixtures, which have no qtbot)."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in time")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)


def pump_for(ms: int) -> None:
    """Process Qt events for ``ms`` milliseconds."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)


def idle(win) -> bool:
    return (not win.tasks.busy and win.compression.worker is None and not win.viewport.pending
            and win.viewport.thread.idle())


@pytest.fixture(scope="module")
def compressed_window(qapp, small_scene_file, tmp_path_factory):
    """One window per test module that opened the small scene and ran the tiny compression to the end.
    Tests using it must leave it as they found it (all clusters shown, no selection)."""
    mp = pytest.MonkeyPatch()
    errors: list[tuple[str, str]] = []
    _record_errors(mp, errors)
    win = make_window(tmp_path_factory.mktemp("settings") / "settings.ini")
    win.errors = errors
    win.files.open_path(small_scene_file)
    pump(lambda: win.session.original is not None and idle(win))
    win.panel.run_button.click()
    pump(lambda: win.compression.worker is None and idle(win), 300)
    assert not errors, errors
    yield win
    close_window(win, pump_for)
    mp.undo()


def open_and_settle(qtbot, win, path, timeout_s: float = 120.0) -> None:
    win.files.open_path(path)
    qtbot.waitUntil(lambda: not win.tasks.busy, timeout=int(timeout_s * 1000))
    settle(qtbot, win, timeout_s)
