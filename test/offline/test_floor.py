"""Sizing a fitted body by its feet on a known floor (exact synthetic keypoints, no BlazePose)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mahmr_ros.geometry import project
from mahmr_ros.offline.anny_body import FIT_BONES
from mahmr_ros.offline.floor import ANKLES, HEELS, FloorSizer, floor_up
from mahmr_ros.offline.place import assumed_K
from mahmr_ros.offline.sample import _POSE

R_FACE = np.array(
    [[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]
)  # Anny frame -> level camera, facing it


def _pitch(deg: float) -> np.ndarray:
    """Level-camera axes -> axes of a camera tilted down by ``deg``."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _standing(body, age, height_ph, camera_height, pitch_deg, x=0.3, z=3.0):
    """A person of the given phenotypes standing on the floor: R_cam_anny, bone_aa, exact pixels,
    K."""
    aa = np.zeros((1, len(FIT_BONES), 3))
    for name, value in _POSE.items():
        aa[0, FIT_BONES.index(name)] = value
    with torch.no_grad():
        kp = body.keypoints_fast(
            torch.as_tensor(aa), torch.tensor([age]), torch.tensor([height_ph])
        )[0].numpy()
    kp_level = kp @ R_FACE.T  # level camera axes, y down
    lift = body.keypoint_lift_m([age], [height_ph])[0]
    heels = list(HEELS)
    # the lower heel's soles on the floor y = +camera_height
    t_y = np.min(camera_height - lift[heels] - kp_level[heels, 1])
    R = _pitch(pitch_deg)
    X = (kp_level + [x, t_y, z]) @ R.T
    K = assumed_K(640, 480, 60.0)
    return R @ R_FACE, aa, project(X, K), K, X


@pytest.mark.parametrize(("age", "pitch_deg"), [(0.22, 0.0), (0.15, 20.0), (0.62, 10.0)])
def test_recovers_the_height_of_a_person_standing_on_the_floor(anny_body, age, pitch_deg):
    R, aa, uv, K, X = _standing(anny_body, age, 0.5, camera_height=1.2, pitch_deg=pitch_deg)
    assert np.all(X[:, 2] > 1.0)
    sizer = FloorSizer(anny_body, camera_height_m=1.2, camera_pitch_deg=pitch_deg)
    conf = np.ones((1, len(uv)))
    got_age, got_hph, ok = sizer.size(R[None], aa, uv[None], conf, K)
    assert ok.tolist() == [True]
    true_h = anny_body.height_m([age], [0.5])[0]
    assert (
        abs(anny_body.height_m(got_age, got_hph)[0] - true_h) < 0.02
    )  # metres (path nodes ~3 cm apart)


def test_a_wrong_camera_height_scales_the_body(anny_body):
    """The floor fixes the scale: a camera assumed 10 % higher sees a ~10 % taller, farther
    person."""
    R, aa, uv, K, _ = _standing(anny_body, 0.3, 0.5, camera_height=1.2, pitch_deg=0.0)
    conf = np.ones((1, len(uv)))
    right = FloorSizer(anny_body, 1.2).size(R[None], aa, uv[None], conf, K)
    high = FloorSizer(anny_body, 1.32).size(R[None], aa, uv[None], conf, K)
    h_right, h_high = (anny_body.height_m(a, h)[0] for a, h, _ in (right, high))
    assert 1.06 < h_high / h_right < 1.14


def test_feet_unseen_or_no_floor_solution_leave_the_person_unsized(anny_body):
    R, aa, uv, K, _ = _standing(anny_body, 0.3, 0.5, camera_height=1.2, pitch_deg=0.0)
    sizer = FloorSizer(anny_body, 1.2)
    conf = np.ones((2, len(uv)))
    conf[0, list(HEELS) + list(ANKLES)] = 0.0  # no foot landmark
    uv2 = np.stack([uv, uv])
    uv2[1, :, 1] = (
        2 * K[1, 2] - uv2[1, :, 1]
    )  # mirrored upside down: the feet are above the horizon
    age, hph, ok = sizer.size(np.stack([R, R]), np.concatenate([aa, aa]), uv2, conf, K)
    assert ok.tolist() == [False, False]
    assert np.isnan(age).all() and np.isnan(hph).all()
    empty = sizer.size(np.zeros((0, 3, 3)), np.zeros((0, len(FIT_BONES), 3)), np.zeros((0, 23, 2)),
                       np.zeros((0, 23)), K)  # fmt: skip
    assert all(len(a) == 0 for a in empty)


def test_feet_above_the_floor_are_refused_not_turned_into_a_giant(anny_body):
    """A child standing on a 0.6 m box looks like a 2+ m person on the floor farther away:
    refused."""
    R, aa, uv, K, _ = _standing(anny_body, 0.28, 0.5, camera_height=0.6, pitch_deg=0.0)
    conf = np.ones((1, len(uv)))
    age, _, ok = FloorSizer(anny_body, 1.2).size(R[None], aa, uv[None], conf, K)
    assert ok.tolist() == [False] and np.isnan(age).all()
    # the same pixels with the floor where it really is: sized
    assert FloorSizer(anny_body, 0.6).size(R[None], aa, uv[None], conf, K)[2].tolist() == [True]


def test_feet_outside_the_image_are_not_used(anny_body):
    """A person cut off at the knees by the image border: BlazePose's guessed feet must not size
    them."""
    R, aa, uv, K, _ = _standing(anny_body, 0.3, 0.5, camera_height=1.2, pitch_deg=0.0, z=1.6)
    conf = np.ones((1, len(uv)))
    sizer = FloorSizer(anny_body, 1.2)
    assert uv[list(HEELS), 1].min() > 479  # the heels project below a 640x480 image
    assert sizer.size(R[None], aa, uv[None], conf, K)[2].tolist() == [
        True
    ]  # no image size: all used
    age, _, ok = sizer.size(R[None], aa, uv[None], conf, K, image_wh=(640, 480))
    assert ok.tolist() == [False] and np.isnan(age).all()


def test_floor_geometry_and_bad_arguments(anny_body):
    np.testing.assert_allclose(floor_up(0.0), [0.0, -1.0, 0.0], atol=1e-12)
    # a camera tilted down 90 degrees would look at the floor: 'up' is then its -z axis
    np.testing.assert_allclose(floor_up(89.999), [0.0, 0.0, -1.0], atol=1e-4)
    np.testing.assert_allclose(_pitch(30.0) @ [0.0, -1.0, 0.0], floor_up(30.0), atol=1e-12)
    with pytest.raises(ValueError, match="camera_height_m"):
        FloorSizer(anny_body, 0.0)
    with pytest.raises(ValueError, match="camera_pitch_deg"):
        FloorSizer(anny_body, 1.2, camera_pitch_deg=95.0)
