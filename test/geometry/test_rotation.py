"""Rotations (roma for tensors, scipy for arrays) against hand-worked matrices and the other
library."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.geometry import (
    axis_angle_to_rotmat,
    quat_xyzw_to_rotmat,
    rot6d_to_rotmat,
    rotation_between,
    rotmat_to_axis_angle,
    rotmat_to_quat_xyzw,
)

RZ90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # +90 degrees about z: x -> y
RY90 = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # +90 degrees about y: z -> x
FLIP_X = np.diag([1.0, -1, -1])  # a standing person's global orient (spec mahmr_model §8 #15)


def _gram_schmidt_reference(rot6d: np.ndarray) -> np.ndarray:
    """Spec §1.7 written out in numpy: columns a1 = (0, 2, 4), a2 = (1, 3, 5); R = [b1 b2 b1 x
    b2]."""
    a1, a2 = rot6d[..., 0::2], rot6d[..., 1::2]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 /= np.linalg.norm(b2, axis=-1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-1)


def test_rot6d_official_layout_on_hand_built_vectors():
    assert torch.equal(rot6d_to_rotmat(torch.tensor([1.0, 0, 0, 1, 0, 0])), torch.eye(3))
    # Row-major 3x2: a1 = elements (0, 2, 4) = (0, 1, 0), a2 = (1, 3, 5) = (-1, 0, 0) -> R = [a1 a2
    # a1 x a2].
    rz90 = torch.tensor(RZ90, dtype=torch.float32)
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([0.0, -1, 1, 0, 0, 0])), rz90)
    # The column-major reading of the same numbers, (0, -1, 1) and (0, 0, 0), would not even be a
    # rotation. Unnormalised, non-orthogonal: a1 = (0, 3, 0) -> (0, 1, 0); a2 = (-2, 0.5, 0) minus
    # its a1 part -> -x.
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([0.0, -2, 3, 0.5, 0, 0])), rz90)


def test_rot6d_matches_the_spec_gram_schmidt_on_random_batches():
    rot6d = np.random.default_rng(0).normal(size=(4, 24, 6))
    ours = rot6d_to_rotmat(torch.from_numpy(rot6d))
    assert ours.shape == (4, 24, 3, 3) and ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), _gram_schmidt_reference(rot6d), atol=1e-12)
    ours32 = rot6d_to_rotmat(torch.from_numpy(rot6d).float()).numpy()
    np.testing.assert_allclose(ours32, _gram_schmidt_reference(rot6d), atol=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_axis_angle_hand_worked_and_against_the_other_library(kind):
    wrap = (lambda x: np.asarray(x)) if kind == "numpy" else (lambda x: torch.as_tensor(x))
    back = (lambda x: np.asarray(x)) if kind == "numpy" else (lambda x: x.numpy())
    np.testing.assert_allclose(
        back(axis_angle_to_rotmat(wrap([0.0, 0.0, math.pi / 2]))), RZ90, atol=1e-12
    )
    np.testing.assert_allclose(
        back(rotmat_to_axis_angle(wrap(RZ90))), [0, 0, math.pi / 2], atol=1e-12
    )
    np.testing.assert_allclose(
        np.abs(back(rotmat_to_axis_angle(wrap(FLIP_X)))), [math.pi, 0, 0], atol=1e-12
    )
    np.testing.assert_array_equal(back(rotmat_to_axis_angle(wrap(np.eye(3)))), np.zeros(3))
    # Random batch with tiny and near-pi angles, (2, 32, 3): the reference is the OTHER library.
    aa = Rotation.random(64, random_state=1).as_rotvec().reshape(2, 32, 3)
    aa[0, :3] *= 1e-7
    aa[1, :3] *= (math.pi - 1e-6) / np.linalg.norm(aa[1, :3], axis=-1, keepdims=True)
    R = back(axis_angle_to_rotmat(wrap(aa)))
    assert R.shape == (2, 32, 3, 3)
    if kind == "numpy":  # scipy vs roma on the same float64 numbers
        np.testing.assert_allclose(
            R, axis_angle_to_rotmat(torch.from_numpy(aa)).numpy(), atol=1e-12
        )
    else:
        np.testing.assert_allclose(
            R, Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(R.shape), atol=1e-12
        )
    np.testing.assert_allclose(back(rotmat_to_axis_angle(wrap(R))), aa, atol=1e-8)


def test_types_follow_the_input():
    aa32 = torch.tensor([[0.1, 0.2, 0.3]])
    assert axis_angle_to_rotmat(aa32).dtype == torch.float32
    assert rotmat_to_axis_angle(axis_angle_to_rotmat(aa32)).dtype == torch.float32
    assert isinstance(axis_angle_to_rotmat([0.1, 0.2, 0.3]), np.ndarray)
    assert axis_angle_to_rotmat(np.zeros((0, 3), np.float32)).shape == (0, 3, 3)
    assert rotmat_to_axis_angle(torch.zeros(2, 0, 3, 3)).shape == (2, 0, 3)


def test_torch_nan_rotation_gives_zero_axis_angle_as_the_official_code():
    R = torch.full((3, 3), float("nan"))
    assert torch.equal(rotmat_to_axis_angle(R), torch.zeros(3))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_quaternion_hand_worked_sign_and_round_trip(kind):
    wrap = (lambda x: np.asarray(x)) if kind == "numpy" else (lambda x: torch.as_tensor(x))
    back = (lambda x: np.asarray(x)) if kind == "numpy" else (lambda x: x.numpy())
    h = math.sqrt(0.5)
    np.testing.assert_allclose(back(rotmat_to_quat_xyzw(wrap(RZ90))), [0, 0, h, h], atol=1e-12)
    # rows [[0,1,0],[0,0,-1],[-1,0,0]]: trace 0 -> w = 0.5; x = (R21 - R12) / 4w = 0.5, y = 0.5, z
    # = -0.5.
    R = np.array([[0.0, 1, 0], [0, 0, -1], [-1, 0, 0]])
    np.testing.assert_allclose(
        back(rotmat_to_quat_xyzw(wrap(R))), [0.5, 0.5, -0.5, 0.5], atol=1e-12
    )
    q = np.random.default_rng(0).normal(size=(20, 4))
    R = back(quat_xyzw_to_rotmat(wrap(q)))  # not normalised on purpose
    np.testing.assert_allclose(R, Rotation.from_quat(q).as_matrix(), atol=1e-12)
    q_back = back(rotmat_to_quat_xyzw(wrap(R)))
    assert np.all(q_back[:, 3] >= 0)
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(q_back, unit * np.sign(unit[:, 3:]), atol=1e-12)
    # An unset ROS quaternion (all zeros) reads as the identity.
    np.testing.assert_array_equal(back(quat_xyzw_to_rotmat(wrap(np.zeros(4)))), np.eye(3))


def test_rotation_between_hand_cases():
    np.testing.assert_allclose(rotation_between([0, 0, 1], [1, 0, 0]), RY90, atol=1e-12)
    np.testing.assert_allclose(rotation_between([0, 0, 1], [0, 0, 5]), np.eye(3), atol=1e-12)
    flip = rotation_between([0, 0, 1], [0, 0, -1])
    np.testing.assert_allclose(flip @ [0, 0, 1], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(flip @ flip.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(flip), 1.0)
