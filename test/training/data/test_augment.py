"""Augmentation primitives: camera rotation / flip of SMPL parameters, crop range, photometric
changes."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from training.data.augment import (
    affine,
    color_jitter,
    crop_height,
    flip_people,
    occlude,
    rotate_people,
)


def test_rotating_people_moves_their_root_joint_rigidly():
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (2, 72)).astype(np.float32)
    transl = np.array([[0.5, 0.1, 4.0], [-1.0, 0.2, 6.0]], np.float32)
    j0 = np.array([[0.0, -0.2, 0.02], [0.01, -0.25, 0.0]])
    R = Rotation.from_rotvec([0, 0, 0.3]).as_matrix()
    new_poses, new_transl = rotate_people(poses, transl, j0, R)
    np.testing.assert_allclose(
        new_transl + j0, (transl + j0) @ R.T, atol=1e-5
    )  # root joint = J0 + t
    glob = Rotation.from_rotvec(new_poses[:, :3]).as_matrix()
    np.testing.assert_allclose(glob, R @ Rotation.from_rotvec(poses[:, :3]).as_matrix(), atol=1e-5)
    np.testing.assert_array_equal(new_poses[:, 3:], poses[:, 3:])


def test_flip_swaps_sides_and_mirrors_the_root():
    poses = np.zeros((1, 72), np.float32)
    poses[0, 3:6] = [0.1, 0.2, 0.3]  # left hip
    transl = np.array([[0.5, 0.1, 4.0]], np.float32)
    j0 = np.array([[0.0, -0.2, 0.0]])
    new_poses, new_transl = flip_people(poses, transl, j0)
    np.testing.assert_allclose(
        new_poses[0, 6:9], [0.1, -0.2, -0.3]
    )  # now the right hip, y/z negated
    np.testing.assert_allclose(new_transl[0] + j0[0], [-0.5, -0.1, 4.0], atol=1e-6)


def test_affine_maps_the_principal_point_like_any_pixel():
    image = np.zeros((100, 200, 3), np.uint8)
    K = np.array([[150.0, 0, 90], [0, 150, 40], [0, 0, 1]], np.float32)
    out, K2, R3 = affine(image, K, np.deg2rad(10), 1.5)
    c = np.array([100.0, 50.0])
    expected = 1.5 * R3[:2, :2] @ (K[:2, 2] - c) + c
    np.testing.assert_allclose(K2[:2, 2], expected, rtol=1e-6)
    assert K2[0, 0] == 225.0 and out.shape == image.shape


def test_crop_height_range_and_photometric_ops():
    rng = np.random.default_rng(0)
    heights = [crop_height(400, 300.0, rng) for _ in range(200)]
    assert min(heights) >= 300 and max(heights) <= 400
    image = np.full((50, 60, 3), 100, np.uint8)
    assert np.array_equal(color_jitter(image, 0.0, rng), image)
    jittered = color_jitter(image, 0.2, rng)
    assert jittered.dtype == np.uint8 and jittered.shape == image.shape
    occluded = occlude(image, np.array([[10, 10, 40, 40]]), prob=1.0, max_area=0.3, rng=rng)
    changed = np.argwhere((occluded != image).any(-1))
    assert len(changed) > 0 and changed.min() >= 10 and changed.max() <= 40
