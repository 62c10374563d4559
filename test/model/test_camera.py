import math

import numpy as np
import pytest

from mahmr_ros.model.camera import (
    intrinsics_img_to_net,
    intrinsics_net_to_img,
    project,
    reconcile_to_camera,
    rotation_between,
)


def test_intrinsics_pixel_convention_hand_checked():
    # Resized 224 x 112 image of a 448 x 224 original (r = 0.5); network f = 100, pp (112, 56)
    # continuous.
    K_net = np.array([[100.0, 0, 112], [0, 100, 56], [0, 0, 1]])
    K_img = intrinsics_net_to_img(K_net, 0.5)
    assert np.allclose(K_img, [[200, 0, 223.5], [0, 200, 111.5], [0, 0, 1]])
    assert np.allclose(intrinsics_img_to_net(K_img, 0.5), K_net)


def test_rotation_between_is_minimal_and_exact():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(size=3), rng.normal(size=3)
        R = rotation_between(a, b)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1)
        assert np.allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b))
        # Minimal: the axis a x b is fixed, the angle is the angle between a and b.
        axis = np.cross(a, b)
        assert np.allclose(R @ axis, axis)
        angle = math.acos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
        assert np.isclose(math.acos((np.trace(R) - 1) / 2), angle)
    assert np.allclose(rotation_between([0, 0, 1], [0, 0, 2]), np.eye(3))
    flip = rotation_between([0, 0, 1], [0, 0, -1])
    assert np.allclose(flip @ [0, 0, 1], [0, 0, -1])


def _person(rng, center, n=200):
    """A 1.7 m tall point cloud (camera frame, head up = -y) around ``center``; joint 0 at the
    centre."""
    pts = rng.uniform([-0.25, -0.85, -0.15], [0.25, 0.85, 0.15], size=(n, 3)) + center
    return pts[None], np.concatenate([np.asarray(center)[None], pts[:44]])[None]


@pytest.mark.parametrize("distance", [2.5, 6.0])
def test_known_camera_keeps_the_pixels_the_size_and_the_height(distance):
    """The reconciled people reproject onto the same pixels in the real camera (pelvis exactly)."""
    rng = np.random.default_rng(1)
    K_net = np.array([[1000.0, 0, 639.5], [0, 1000, 359.5], [0, 0, 1]])
    K_real = np.array(
        [[1210.0, 0, 610.0], [0, 1190, 380.0], [0, 0, 1]]
    )  # ~20 % longer, off-centre pp
    verts, joints = _person(rng, [0.8, 0.1, distance])
    orient = np.eye(3)[None]
    transl = joints[:, 0] - np.array([[0.0, 0.2, 0.0]])  # SMPL origin ~0.2 m from the pelvis
    v2, j2, o2, t2, R_c = reconcile_to_camera(verts, joints, orient, transl, K_net, K_real)
    before = project(verts[0], K_net)
    after = project(v2[0], K_real)
    extent = np.ptp(before[:, 1])
    assert np.allclose(project(j2[0, 0], K_real), project(joints[0, 0], K_net), atol=1e-9)
    # Left over: the pixel aspect fx / fy (0.8 %) and perspective, dz (1 - f_net / f_real) / z (<=
    # 1 % here).
    assert np.abs(after - before).max() < 0.02 * extent
    # Metric body unchanged (rigid motion): same height and joint distances; depth scaled by f_real
    # / f_net.
    assert np.allclose((v2[0] - j2[0, 0]) @ R_c[0], verts[0] - joints[0, 0])
    assert np.isclose(j2[0, 0, 2], distance * math.sqrt(1210 * 1190) / 1000)
    assert np.allclose(o2[0], R_c[0]) and np.allclose(t2[0] - j2[0, 0], transl[0] - joints[0, 0])


def test_same_camera_changes_nothing():
    rng = np.random.default_rng(2)
    verts, joints = _person(rng, [-0.3, 0.0, 4.0])
    K = np.array([[900.0, 0, 320], [0, 900, 240], [0, 0, 1]])
    v2, j2, o2, t2, _ = reconcile_to_camera(verts, joints, np.eye(3)[None], np.zeros((1, 3)), K, K)
    assert np.allclose(v2, verts) and np.allclose(j2, joints) and np.allclose(o2, np.eye(3)[None])
