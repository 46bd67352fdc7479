"""Start the desktop application: ``python main.py [SCENE] [--cameras PATH] [--screenshot OUT.png]``.

Without SCENE the bundled demo scene opens. ``--screenshot OUT.png`` needs no display: the window is
built offscreen (``QT_QPA_PLATFORM=offscreen`` unless set), the scene loads and renders, and a PNG of
the whole window is written (atomically; an existing file only with ``--force``), then the program exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("app")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
GUI_VALUE_OPTIONS = ("--cameras", "--screenshot", "--window-size", "--timeout")
GUI_FLAG_OPTIONS = ("--force",)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="main.py", description="NeuralGS Studio, the desktop application: open a scene, compress it, compare "
                                    "original and compressed renders, inspect clusters, export. Command-line tools: "
                                    "main.py --help.")
    p.add_argument("scene", nargs="?", help="scene to open: .ply, .compressed.ply, .splat, .spz, .sog or .ngs "
                                            "(default: the bundled demo scene)")
    p.add_argument("--cameras", metavar="PATH", help="dataset folder or cameras file to open as well")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="no display needed: load and render the scene, save a PNG of the window, exit")
    p.add_argument("--force", action="store_true", help="let --screenshot replace an existing file")
    p.add_argument("--window-size", default="1440x900", metavar="WxH", help="window size (default 1440x900)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S",
                   help="--screenshot gives up after this many seconds (default 300)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def looks_like_gui(argv: list[str], commands: set[str]) -> bool:
    """Whether ``main.py argv`` means the application (True) or a command-line command (False)."""
    positional: list[str] = []
    gui_option = False
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if name in GUI_VALUE_OPTIONS:
            gui_option, skip = True, "=" not in tok
        elif name in GUI_FLAG_OPTIONS:
            gui_option = True
        elif not tok.startswith("-"):
            positional.append(tok)
    if positional:
        first = positional[0]
        if first in commands:
            return False
        return Path(first).exists() or first.lower().endswith((".ply", ".splat", ".spz", ".sog", "meta.json", ".ngs"))
    if gui_option:
        return True
    return all(tok in ("-v", "--verbose") for tok in argv)


def _window_size(text: str) -> tuple[int, int]:
    from core.cli.common import parse_size

    try:
        return parse_size(text)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"error: --window-size: {exc}") from None


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def run(argv: list[str]) -> int:
    """Run the application; returns the exit status."""
    args = build_parser().parse_args(argv)
    from core.cli import configure_logging

    configure_logging(args.verbose)
    size = _window_size(args.window_size)
    shot = Path(args.screenshot) if args.screenshot else None
    if shot is not None:
        if shot.exists() and not args.force:
            log.error("%s already exists; not replacing it (add --force)", shot)
            return EXIT_USAGE
        if not shot.parent.is_dir():
            log.error("%s: folder %s does not exist", shot, shot.parent)
            return EXIT_USAGE
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not os.environ.get("QT_QPA_PLATFORM") and not _has_display():
        log.error("no display found (DISPLAY is not set): to render the window to a PNG instead, run "
                  "main.py --screenshot OUT.png [SCENE]")
        return EXIT_USAGE

    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from core.paths import DEMO_SCENE

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "neuralgs-studio"])
    app.setApplicationName("NeuralGS Studio")
    window = MainWindow()
    # the window hides at once when asked to quit but closes for good (``closed``) only once its threads ended:
    # quitting on the last window's hiding would destroy a running QThread (which aborts the process)
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(app.quit)
    window.resize(*size)
    window.show()
    if args.cameras:
        window.files.open_cameras(args.cameras)
    window.files.open_path(args.scene or DEMO_SCENE)
    if shot is None:
        status = app.exec()
        if not window.shutdown_complete:  # the loop ended some other way: stop the threads before exiting
            window.close()
            window.wait_closed()
        return status
    return _screenshot(app, window, shot, args.force, args.timeout)


def _screenshot(app, window, path: Path, force: bool, timeout_s: float) -> int:
    """Wait for the loaded scene's first full-resolution frame, save the window, quit."""
    from PySide6.QtCore import QTimer

    status = {"code": EXIT_FAILED}
    window.modal_errors = False

    def ready() -> bool:
        session = window.session
        return ((session.original is not None or session.compressed is not None) and not window.tasks.busy
                and not window.viewport.pending and window.viewport.thread.idle())

    saved = []

    def poll() -> None:  # frames, loading and the start-up warm-up end in any order: check until ready
        if not saved and ready() and window.viewport.last_result is not None and window.viewport.last_result.full:
            saved.append(True)
            QTimer.singleShot(200, save)

    def save() -> None:
        try:
            n = window.files.save_screenshot(path, overwrite=force)
        except OSError as exc:
            log.error("%s: %s", path, exc)
            status["code"] = EXIT_USAGE
        else:
            print(f"wrote {path} ({n:,} bytes, window {window.width()}x{window.height()})")
            status["code"] = EXIT_OK
        app.quit()

    def on_error(title: str, message: str) -> None:
        log.error("%s", message)
        status["code"] = EXIT_USAGE
        app.quit()

    def give_up() -> None:
        log.error("no rendered frame after %.0f s; no screenshot written", timeout_s)
        app.quit()

    poller = QTimer(interval=100)
    poller.timeout.connect(poll)
    poller.start()
    window.errorShown.connect(on_error)
    QTimer.singleShot(int(timeout_s * 1000), give_up)
    app.exec()
    window.close()
    window.wait_closed()
    return status["code"]
