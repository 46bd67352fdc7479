"""Camera model: validation, look-at orientation, resizing."""

from __future__ import annotations

import numpy as np
import pytest

from core.camera import Camera, CameraValidationError


def project(cam: Camera, p) -> np.ndarray:
    pc = cam.world_to_camera @ np.append(np.asarray(p, float), 1.0)
    return np.array([cam.fx * pc[0] / pc[2] + cam.cx, cam.fy * pc[1] / pc[2] + cam.cy, pc[2]])


def test_look_at_keeps_world_up_at_the_top_and_right_on_the_right():
    cam = Camera.look_at([5, 0, 0], [0, 0, 0], [0, 0, 1], 50.0, 64, 48)
    centre = project(cam, [0, 0, 0])
    assert np.allclose(centre[:2], [32, 24]) and centre[2] > 0
    above = project(cam, [0, 0, 1])
    assert above[1] < 24  # image rows grow downwards
    # looking down -x with +z up, world +y is on the viewer's right
    assert project(cam, [0, 1, 0])[0] > 32
    assert np.allclose(cam.position, [5, 0, 0])
    assert np.allclose(cam.forward, [-1, 0, 0])


def test_resized_scales_intrinsics():
    cam = Camera(np.eye(4), 1000.0, 1000.0, 400.0, 400.0, 800, 800).resized(400, 400)
    assert (cam.fx, cam.cx, cam.width) == (500.0, 200.0, 400)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(world_to_camera=np.diag([1.0, 1.0, -1.0, 1.0])), "proper rotation"),
        (dict(world_to_camera=np.full((4, 4), np.nan)), "NaN"),
        (dict(fx=-1.0), "positive"),
        (dict(width=0), "positive integer"),
        (dict(world_to_camera=np.eye(3)), "shape"),
    ],
)
def test_invalid_cameras_are_rejected(kwargs, message):
    args = dict(world_to_camera=np.eye(4), fx=100.0, fy=100.0, cx=8.0, cy=8.0, width=16, height=16)
    args.update(kwargs)
    with pytest.raises(CameraValidationError, match=message):
        Camera(**args)
