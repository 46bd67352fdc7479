"""World up and training cameras: the View menu's up axis, the toolbar's camera list, ] and [.

:class:`CameraController` owns the camera list (``box``), the next / previous camera actions and the
up-axis action group; it reads the session's cameras (a dataset or cameras file, else the last
compression's training views) and world up, and changes only ``Session.up_override``. The up-axis actions
are checkable and exclusive, and the one of the current world up is ticked (none when the up estimated
from the cameras is none of the four axes).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QWidget

from app.menus import UP_AXES, make_action
from app.session import Session
from app.viewport import Viewport
from widgets.compare_view import CompareView

log = logging.getLogger(__name__)


class CameraController(QObject):
    """See the module docstring. ``window``: the widget that owns the actions (their shortcuts)."""

    def __init__(self, session: Session, view: CompareView, viewport: Viewport, window: QWidget) -> None:
        super().__init__(window)
        self.session, self.view, self.viewport = session, view, viewport
        self.actions: dict[str, QAction] = {
            "next_camera": make_action(window, "Next training camera", lambda: self.step(1), "]",
                                       "Jump to the next training camera (])"),
            "prev_camera": make_action(window, "Previous training camera", lambda: self.step(-1), "[",
                                       "Jump to the previous training camera ([)"),
        }
        self.actions["prev_camera"].setIconText("◀")  # the toolbar shows these beside the camera list
        self.actions["next_camera"].setIconText("▶")
        self.up_group = QActionGroup(window)
        self.up_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)  # none: an estimated up
        for label, vec in UP_AXES.items():
            act = QAction(label, window, checkable=True)
            act.setData(vec)
            act.triggered.connect(lambda _=False, v=vec: self.set_up_axis(v))
            self.up_group.addAction(act)
        self.box = QComboBox(toolTip="Jump to a training camera (from the dataset or cameras file, else the "
                                     "views of the last compression); [ and ] step through them. Navigating "
                                     "from a camera keeps its roll (the orbit turns around its up) until "
                                     "Frame scene (F) levels the view again")
        self.box.setMinimumContentsLength(18)
        self.box.activated.connect(self._chosen)
        view.cameraChanged.connect(self._free_camera)

    # -- world up -------------------------------------------------------------------------------------
    def set_up_axis(self, up) -> None:
        """The user's world up: the view turns to it and frames the scene."""
        self.view.rig.set_up(self.session.set_up_override(up))
        self.view.frame_scene()
        self.tick_up()

    def follow_cameras_up(self) -> None:
        """New cameras were opened: the view takes their up, unless the user chose one."""
        if self.session.up_override is None:
            self.view.rig.set_up(self.session.up_axis())
        self.tick_up()

    def frame(self, bounds) -> None:
        """Frame a newly shown scene (robust bounds [3] x 2) with the session's world up."""
        self.view.set_scene_bounds(*bounds, up=self.session.up_axis())
        self.tick_up()

    def tick_up(self) -> None:
        """Tick the up-axis action of the session's world up (within a degree), or none."""
        up = np.asarray(self.session.up_axis(), dtype=np.float64)
        up = up / max(float(np.linalg.norm(up)), 1e-12)
        for act in self.up_group.actions():
            act.setChecked(float(np.dot(up, np.asarray(act.data(), dtype=np.float64))) > math.cos(math.radians(1.0)))

    # -- training cameras -----------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        """Jump ``delta`` cameras forward (backward when negative) through the training cameras."""
        cams = self.session.training_cameras()
        if cams:
            i = self.box.currentIndex() - 1
            self.show_camera((i + delta) % len(cams) if i >= 0 else (0 if delta > 0 else len(cams) - 1))

    def show_camera(self, index: int) -> None:
        """Look through training camera ``index`` (pose and vertical field of view)."""
        cam = self.session.training_cameras()[index]
        fov = math.degrees(2.0 * math.atan(0.5 * cam.height / cam.fy))
        self.view.rig.set_pose(cam.world_to_camera, fov)
        self.box.setCurrentIndex(index + 1)
        self.viewport.request_full()

    @Slot(int)
    def _chosen(self, combo_index: int) -> None:
        if combo_index > 0:
            self.show_camera(combo_index - 1)

    @Slot()
    def _free_camera(self) -> None:
        if self.view.rig.pose_override is None and self.box.currentIndex() != 0:
            self.box.setCurrentIndex(0)

    def refresh(self) -> None:
        """The camera list and the step actions follow the session's training cameras."""
        cams = self.session.training_cameras()
        names = ["Free camera"] + [c.name or f"camera {i}" for i, c in enumerate(cams)]
        if [self.box.itemText(i) for i in range(self.box.count())] != names:
            self.box.clear()
            self.box.addItems(names)
        for name in ("next_camera", "prev_camera"):
            self.actions[name].setEnabled(bool(cams))
        self.box.setEnabled(bool(cams))
        self.tick_up()
