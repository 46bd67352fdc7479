"""ParameterPanel: the compression knobs, Run / Pause / Cancel, and progress with stage and ETA.

Plain data in and out: ``set_presets({name: {field: value}})`` fills the preset menu,
``values()`` returns ``{"preset": name, field: value, ...}`` with the CompressionConfig field names
(n_clusters, prune_ratio, lambda_freq, fit_iters, finetune_iters, hidden, device) plus ``target``: the
``.ngs`` v2 codec's target, ``("psnr", dB)``, ``("size", bytes)`` or ``("none", None)`` (the paper's pure
NeuralGS), which a preset's ``target_psnr`` / ``target_size`` fill and the session maps to the
configuration (``app.session.target_fields``), and ``effort``: how much the codec learns from the pictures.
The panel never runs anything: it emits
``runRequested(dict)``, ``pauseToggled(bool)`` and ``cancelRequested``. After a run, or with an opened
``.ngs``, :meth:`ParameterPanel.show_file_size` shows the exact bytes an export will write.

Run (F5), Pause / Resume (F6) and Cancel (Shift+F5) own their shortcuts; a button's ``setText`` replaces
its shortcut with the text's mnemonic (none), so the pause button's text changes go through
:meth:`ParameterPanel._set_pause_text`, which gives F6 back. The three buttons take focus from Tab only:
clicking one leaves the keyboard focus where it was (the compare view, whose arrow keys orbit), and none of
them hands it on to the next widget when a run starts or ends and disables it.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from widgets.units import human_bytes

CUSTOM = "custom"
PAUSE_KEY = "F6"
STAGES = ("views", "importance", "prune", "coadapt", "cluster", "fit", "finetune", "search", "qat", "evaluate")
STAGE_NAMES = {"views": "Views and targets", "importance": "Importance (Eq. 2-3)", "prune": "Pruning",
               "coadapt": "Co-adapting the kept Gaussians (Eq. 5-7)", "cluster": "k-means clustering",
               "fit": "Fitting MLPs (Eq. 4)", "finetune": "Fine-tuning (Eq. 5-7)", "search": "Rate control",
               "qat": "Quantisation-aware fine-tuning", "evaluate": "Held-out evaluation"}
EFFORT_CHOICES = {  # effort: (label, tooltip)
    "fast": ("Fast", "No learning from the pictures: prune, fit and code (the quickest)"),
    "default": ("Default", "Co-adapt the kept Gaussians through the renderer after pruning (300 steps) and let the "
                           "stored attributes learn the residual steps (150 steps): smaller files for the same "
                           "quality, a minute or two more on a CPU"),
    "max": ("Max", "Longer learning (1000 + 400 steps) for the last bytes"),
}
"""core.pipeline.config.EFFORTS, as the panel offers them."""
KNOBS = {  # field: (label, tooltip, minimum, maximum, step, decimals or None for integers)
    "n_clusters": ("Clusters K", "Number of attribute clusters, one tiny MLP each (paper: 6-10 for objects)",
                   1, 512, 1, None),
    "prune_ratio": ("Prune ratio", "Fraction of the least important Gaussians removed before fitting (paper: 0.4)",
                    0.0, 0.95, 0.05, 2),
    "lambda_freq": ("λ freq", "Weight of the frequency loss during fine-tuning (Eq. 7; paper: 0.01; 0 = off)",
                    0.0, 1.0, 0.005, 4),
    "fit_iters": ("Fit iterations", "Adam steps fitting the per-cluster MLPs to the attributes (Eq. 4)",
                  0, 200_000, 100, None),
    "finetune_iters": ("Fine-tune iterations", "Steps fine-tuning the MLPs through the renderer (Eq. 5-7)",
                       0, 100_000, 50, None),
    "hidden": ("Hidden width", "Neurons per hidden layer of each MLP (paper: 128; small scenes need less)",
               4, 1024, 8, None),
}


TARGET_CHOICES = {  # mode: (label, tooltip)
    "psnr": ("Quality (dB)", "The smallest .ngs file whose held-out PSNR (against the original's renders, or a "
                             "dataset's images) reaches this many dB; 40 dB is visually lossless. The codec codes "
                             "residuals against the NeuralGS prediction and searches prune ratio and steps."),
    "size": ("Size", "The best quality that fits in this many bytes (KB = 1,000 bytes, as file managers count): "
                     "residuals against the NeuralGS prediction, steps searched to fill the size"),
    "none": ("None (pure NeuralGS)", "No target and no residuals: the paper's pure NeuralGS (MLPs only), written "
                                     "in the .ngs v2 container; its size and quality follow from K, the width "
                                     "and the iterations"),
}
SIZE_UNITS = {"KB": 1000, "MB": 1000 * 1000}
DEFAULT_TARGET_DB = 40.0
DEFAULT_TARGET_KB = 300.0


def format_duration(seconds: float | None) -> str:
    """``"1:05"`` (m:ss) or ``"1:02:05"``; ``"--"`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ParameterPanel(QWidget):
    """Knobs, preset, device, the three run buttons and the progress display."""

    runRequested = Signal(dict)
    pauseToggled = Signal(bool)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.presets: dict[str, dict] = {}
        self._base_preset = ""
        self._filling = False
        self.editors: dict[str, QSpinBox | QDoubleSpinBox] = {}

        box = QGroupBox("Settings")
        form = QFormLayout(box)
        self.preset_box = QComboBox(toolTip="Settings bundle: preview (about a minute on a laptop CPU), balanced, "
                                            "paper (the paper's 60k/25k iterations, for a CUDA machine). Editing a "
                                            "knob below makes it 'custom' (based on the last preset).")
        self.preset_box.currentTextChanged.connect(self._preset_chosen)
        form.addRow("Preset", self.preset_box)
        for name, (label, tip, lo, hi, step, decimals) in KNOBS.items():
            ed = QSpinBox() if decimals is None else QDoubleSpinBox(decimals=decimals)
            ed.setRange(lo, hi)
            ed.setSingleStep(step)
            ed.setToolTip(tip)
            ed.setKeyboardTracking(False)
            ed.valueChanged.connect(self._edited)
            self.editors[name] = ed
            form.addRow(label, ed)
        self._build_target(form)
        self.effort_box = QComboBox(toolTip="How much the codec learns from the pictures (used with a target; "
                                            "without one the run is pure NeuralGS and its own fine-tuning learns)")
        for effort, (label, tip) in EFFORT_CHOICES.items():
            self.effort_box.addItem(label, effort)
            self.effort_box.setItemData(self.effort_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.effort_box.setCurrentIndex(self.effort_box.findData("default"))
        self.effort_box.currentIndexChanged.connect(self._edited)
        form.addRow(QLabel("Effort", toolTip=self.effort_box.toolTip()), self.effort_box)
        self.device_box = QComboBox(toolTip="Where to compute: auto = CUDA when available, else CPU")
        self.device_box.addItems(["auto", "cpu", "cuda"])
        form.addRow("Device", self.device_box)

        self.run_button = QPushButton("Run", toolTip="Compress the open scene with these settings (F5)")
        self.run_button.setShortcut(QKeySequence("F5"))
        self.pause_button = QPushButton("Pause", checkable=True, toolTip="Pause / resume the compression (F6)")
        self.pause_button.setShortcut(QKeySequence(PAUSE_KEY))
        self.cancel_button = QPushButton("Cancel", toolTip="Stop the compression; nothing is kept or written "
                                                           "(Shift+F5)")
        self.cancel_button.setShortcut(QKeySequence("Shift+F5"))
        self.run_button.clicked.connect(self._run_clicked)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.cancel_button.clicked.connect(self.cancelRequested)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.pause_button, self.cancel_button):
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            buttons.addWidget(b)

        self.stage_label = QLabel("Idle", toolTip="Current stage of the compression")
        self.stage_label.setWordWrap(True)
        self.progress = QProgressBar(toolTip="Progress of the current stage")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.eta_label = QLabel("", toolTip="Time spent in this stage and estimated time left in it")
        self.message_label = QLabel("", toolTip="Latest message from the pipeline")
        self.message_label.setWordWrap(True)
        self.size_label = QLabel("", toolTip="The exact size of the .ngs file that File > Export .ngs (Ctrl+E) "
                                             "will write for the result shown")
        self.size_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addLayout(buttons)
        for w in (self.stage_label, self.progress, self.eta_label, self.message_label, self.size_label):
            layout.addWidget(w)
        layout.addStretch(1)
        self.stages = tuple(s for s in STAGES if s not in ("coadapt", "search", "qat"))
        self.set_running(False)

    def _build_target(self, form: QFormLayout) -> None:
        """The codec's target: a mode (quality, size, none) and its value (dB, or a size in KB / MB)."""
        self.target_box = QComboBox()
        for mode, (label, tip) in TARGET_CHOICES.items():
            self.target_box.addItem(label, mode)
            self.target_box.setItemData(self.target_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.target_box.setToolTip("What the .ngs v2 codec aims for: a quality (the smallest file reaching it), a "
                                   "size (the best quality within it) or none (the paper's pure NeuralGS, no "
                                   "residuals)")
        self.psnr_spin = QDoubleSpinBox(decimals=1, suffix=" dB", toolTip=TARGET_CHOICES["psnr"][1])
        self.psnr_spin.setRange(10.0, 99.0)
        self.psnr_spin.setSingleStep(0.5)
        self.psnr_spin.setValue(DEFAULT_TARGET_DB)
        self.size_spin = QDoubleSpinBox(decimals=1, toolTip=TARGET_CHOICES["size"][1])
        self.size_spin.setRange(0.1, 1_000_000.0)
        self.size_spin.setSingleStep(10.0)
        self.size_spin.setValue(DEFAULT_TARGET_KB)
        self.size_unit = QComboBox(toolTip="Unit of the target size (KB = 1,000 bytes, MB = 1,000,000 bytes)")
        self.size_unit.addItems(list(SIZE_UNITS))
        for ed in (self.psnr_spin, self.size_spin):
            ed.setKeyboardTracking(False)
            ed.valueChanged.connect(self._edited)
        self.size_unit.currentTextChanged.connect(self._edited)
        self.target_box.currentIndexChanged.connect(self._target_mode_changed)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w, stretch in ((self.target_box, 0), (self.psnr_spin, 1), (self.size_spin, 1), (self.size_unit, 0)):
            row.addWidget(w, stretch)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow(QLabel("Target", toolTip=self.target_box.toolTip()), holder)
        self._show_target_editors()

    def target_mode(self) -> str:
        return str(self.target_box.currentData())

    def set_target(self, mode: str, value: float | None = None) -> None:
        """Choose the codec's target: ``("psnr", dB)``, ``("size", bytes)`` (shown in KB, or MB from 10 MB)
        or ``("none", None)``; a None value keeps the editor's current one."""
        was, self._filling = self._filling, True
        try:
            self.target_box.setCurrentIndex(self.target_box.findData(mode))
            if mode == "psnr" and value is not None:
                self.psnr_spin.setValue(float(value))
            elif mode == "size" and value is not None:
                unit = "MB" if value >= 10 * SIZE_UNITS["MB"] else "KB"
                self.size_unit.setCurrentText(unit)
                self.size_spin.setValue(float(value) / SIZE_UNITS[unit])
            self._show_target_editors()
        finally:
            self._filling = was

    def target(self) -> tuple[str, float | int | None]:
        """``("psnr", dB)``, ``("size", bytes)`` or ``("none", None)``."""
        mode = self.target_mode()
        if mode == "psnr":
            return mode, float(self.psnr_spin.value())
        if mode == "size":
            return mode, int(round(self.size_spin.value() * SIZE_UNITS[self.size_unit.currentText()]))
        return "none", None

    def _target_mode_changed(self, _index: int) -> None:
        self._show_target_editors()
        self._edited()

    def _show_target_editors(self) -> None:
        mode = self.target_mode()
        self.psnr_spin.setVisible(mode == "psnr")
        self.size_spin.setVisible(mode == "size")
        self.size_unit.setVisible(mode == "size")

    # -- values --------------------------------------------------------------------------------
    def set_presets(self, presets: dict[str, dict], current: str | None = None) -> None:
        """Preset name -> field overrides (as ``core.pipeline.PRESETS``); selects ``current`` (default: first)."""
        self.presets = {k: dict(v) for k, v in presets.items()}
        self._filling = True
        self.preset_box.clear()
        self.preset_box.addItems([*self.presets, CUSTOM])
        self._filling = False
        self.preset_box.setCurrentText(current or next(iter(self.presets)))
        self._preset_chosen(self.preset_box.currentText())

    def _preset_chosen(self, name: str) -> None:
        if self._filling or name == CUSTOM or name not in self.presets:
            return
        self._base_preset = name
        self.set_values(self.presets[name])

    def set_values(self, values: dict) -> None:
        """Fill the knobs from a dict of field values (unknown keys are ignored); the target from ``target``
        (``(mode, value)``) or a preset's ``target_psnr`` / ``target_size`` (neither: none, pure NeuralGS)."""
        self._filling = True
        try:
            for name, ed in self.editors.items():
                if name in values:
                    ed.setValue(values[name])
            if "device" in values:
                self.device_box.setCurrentText(str(values["device"]))
            if values.get("effort") in EFFORT_CHOICES:
                self.effort_box.setCurrentIndex(self.effort_box.findData(values["effort"]))
            if "target" in values:
                self.set_target(*values["target"])
            elif any(k in values for k in ("target_psnr", "target_size", "residual_groups")):  # a preset's fields
                if values.get("target_psnr"):
                    self.set_target("psnr", values["target_psnr"])
                elif values.get("target_size"):
                    self.set_target("size", values["target_size"])
                else:
                    self.set_target("none")
        finally:
            self._filling = False

    def _edited(self) -> None:
        if self._filling:
            return
        self._filling = True
        self.preset_box.setCurrentText(CUSTOM)
        self._filling = False

    def values(self) -> dict:
        """``{"preset": base preset name, "custom": bool, field: value, "device": ..., "target": (mode, value),
        "effort": fast | default | max}``."""
        out: dict = {"preset": self._base_preset, "custom": self.preset_box.currentText() == CUSTOM}
        for name, ed in self.editors.items():
            out[name] = ed.value()
        out["device"] = self.device_box.currentText()
        out["target"] = self.target()
        out["effort"] = str(self.effort_box.currentData())
        return out

    def show_file_size(self, n_bytes: int | None, what: str = ".ngs") -> None:
        """The exact size of the file an export writes (None: no result, nothing shown)."""
        if n_bytes is None:
            self.size_label.setText("")
            return
        self.size_label.setText(f"Export {what}: {int(n_bytes):,} bytes ({human_bytes(int(n_bytes))})")

    def set_available_devices(self, devices: list[str]) -> None:
        """Enable only these device choices (e.g. without CUDA: auto, cpu)."""
        model = self.device_box.model()
        for i in range(self.device_box.count()):
            model.item(i).setEnabled(self.device_box.itemText(i) in devices)
        if self.device_box.currentText() not in devices:
            self.device_box.setCurrentText(devices[0])

    # -- run state -----------------------------------------------------------------------------
    @Slot()
    def _run_clicked(self) -> None:
        self.runRequested.emit(self.values())

    def _set_pause_text(self, text: str) -> None:
        """The pause button's text, keeping its shortcut (QAbstractButton.setText resets it to the mnemonic)."""
        self.pause_button.setText(text)
        self.pause_button.setShortcut(QKeySequence(PAUSE_KEY))

    def _pause_toggled(self, paused: bool) -> None:
        self._set_pause_text("Resume" if paused else "Pause")
        self.pauseToggled.emit(paused)

    def set_running(self, running: bool) -> None:
        """Enable Run when idle; Pause and Cancel while a compression runs."""
        self.run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for ed in [*self.editors.values(), self.preset_box, self.device_box, self.target_box, self.psnr_spin,
                   self.size_spin, self.size_unit, self.effort_box]:
            ed.setEnabled(not running)
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self._set_pause_text("Pause")
            self.pause_button.blockSignals(False)

    def set_stages(self, stages) -> None:
        """The stages the next run goes through, in order (the "Stage k/n" count); default :data:`STAGES`
        without the codec's (rate control, co-adaptation, QAT), which a pure NeuralGS run skips."""
        self.stages = tuple(stages)

    def show_progress(self, stage: str, step: int, total: int, message: str = "", elapsed_s: float = 0.0,
                      eta_s: float | None = None) -> None:
        """Show one progress record: stage name (k of n: :meth:`set_stages`), its fraction, elapsed time and ETA."""
        index = self.stages.index(stage) + 1 if stage in self.stages else 0
        name = STAGE_NAMES.get(stage, stage)
        paused = " (paused)" if self.pause_button.isChecked() else ""
        self.stage_label.setText(f"Stage {index}/{len(self.stages)}: {name}{paused}" if index else f"{name}{paused}")
        frac = 1.0 if total <= 0 else min(1.0, max(0.0, step / total))
        self.progress.setValue(int(round(1000 * frac)))
        self.progress.setFormat(f"{step}/{total}  (%p%)")
        self.eta_label.setText(f"elapsed {format_duration(elapsed_s)} · ETA {format_duration(eta_s)} (this stage)")
        self.message_label.setText(message)

    def show_status(self, text: str, fraction: float | None = None) -> None:
        """A plain status (finished, cancelled, failed) replacing the stage display."""
        self.stage_label.setText(text)
        self.eta_label.setText("")
        self.message_label.setText("")
        if fraction is not None:
            self.progress.setValue(int(round(1000 * fraction)))
            self.progress.setFormat("%p%")
