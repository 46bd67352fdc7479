"""The GUI thread never blocks for more than 100 ms while a real (small) compression runs.

A QTimer ticks every 10 ms on the GUI thread; the largest gap between ticks is the longest time the
event loop was busy. The probe itself is tested first: a deliberate 200 ms block on the GUI thread
must be caught, so the main test can fail.
"""

from __future__ import annotations

import os
import time

import pytest
from PySide6.QtCore import QTimer

from tests.app.conftest import open_and_settle

MAX_GAP_S = 0.100


class GapProbe:
    """Records the largest interval between ticks of a 10 ms QTimer."""

    def __init__(self) -> None:
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.gaps: list[float] = []

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=0.0)


def test_the_probe_catches_a_blocked_gui_thread(qtbot):
    probe = GapProbe()
    probe.start()
    qtbot.wait(100)
    QTimer.singleShot(0, lambda: time.sleep(0.2))  # work done on the GUI thread, as a bad app would
    qtbot.wait(300)
    probe.stop()
    assert probe.max_gap >= 0.19


def measure_compression(qtbot, window) -> tuple[float, int, float]:
    """(largest tick gap in s, ticks, seconds) while one compression runs from Run to its end."""
    probe = GapProbe()
    probe.start()
    t0 = time.perf_counter()
    window.panel.run_button.click()
    qtbot.waitUntil(lambda: window.compression.worker is None, timeout=300_000)
    probe.stop()
    return probe.max_gap, len(probe.gaps), time.perf_counter() - t0


def test_gui_thread_never_blocks_during_a_compression(window, qtbot, small_scene_file, record_property):
    open_and_settle(qtbot, window, small_scene_file)
    window.panel.set_values(dict(n_clusters=4, fit_iters=600, finetune_iters=24))  # > 1 s of work with warm caches
    # Two tries: a scheduler hiccup on a busy shared 2-core machine rarely repeats; work done on the GUI
    # thread (decoding, activating the scene, a render) blocks every time, so it fails both.
    tries = []
    for _ in range(2):
        gap, ticks, seconds = measure_compression(qtbot, window)
        tries.append((gap, ticks, seconds))
        assert window.session.compressed is not None and not window.errors, window.errors
        if gap < MAX_GAP_S:
            break
    record_property("max_gui_gap_s", [round(t[0], 4) for t in tries])
    print(f"largest GUI-thread gaps during compression: "
          f"{', '.join(f'{g * 1000:.1f} ms over {n} ticks in {s:.1f} s' for g, n, s in tries)}")
    assert ticks > 100 and seconds > 1.0  # the compression really ran while the probe ticked
    if min(t[0] for t in tries) >= MAX_GAP_S and _machine_overloaded():
        # other processes keep every core busy: the scheduler, not this app, decides the gaps
        pytest.skip(f"machine overloaded (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); gaps {tries}")
    assert min(t[0] for t in tries) < MAX_GAP_S, f"GUI thread blocked: {tries}"


def _machine_overloaded() -> bool:
    """More runnable processes than cores, besides this test's own two threads (GUI and worker)."""
    return hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1) + 2


def test_worker_priority_is_lowered_relative_to_the_starting_thread():
    """Under ``nice -n 10`` an absolute niceness of 10 put the compression level with the GUI thread (and the
    render thread's 5 above it): the steps must be relative."""
    import threading

    from app.compress_worker import lower_thread_priority

    if not hasattr(os, "getpriority"):
        pytest.skip("no per-thread niceness here")
    seen = []

    def work() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 2))  # a niced caller
        before = os.getpriority(os.PRIO_PROCESS, tid)
        lower_thread_priority(5)
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=work)
    t.start()
    t.join()
    before, after = seen[0]
    assert after == min(19, before + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before  # only that thread
