import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.model.rotation import axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_axis_angle

RZ90 = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])


def test_rot6d_identity_and_hand_checked_rotation():
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([1.0, 0, 0, 1, 0, 0])), torch.eye(3))
    # Row-major 3x2: column a1 = elements (0, 2, 4) = (0, 1, 0), column a2 = (1, 3, 5) = (-1, 0,
    # 0).
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([0.0, -1, 1, 0, 0, 0])), RZ90)
    # Unnormalised, non-orthogonal input: a1 = (0, 3, 0) -> b1 = (0, 1, 0); a2 = (-2, .5, 0) minus
    # its b1 part -> (-2, 0, 0) -> b2 = (-1, 0, 0): same matrix.
    assert torch.allclose(rot6d_to_rotmat(torch.tensor([0.0, -2, 3, 0.5, 0, 0])), RZ90)


def test_rotmat_to_axis_angle_hand_checked():
    assert torch.allclose(rotmat_to_axis_angle(RZ90), torch.tensor([0, 0, math.pi / 2]), atol=1e-6)
    flip_x = torch.diag(
        torch.tensor([1.0, -1, -1])
    )  # a standing person's global orient (spec §8 #15)
    assert torch.allclose(
        rotmat_to_axis_angle(flip_x).abs(), torch.tensor([math.pi, 0, 0]), atol=1e-6
    )
    assert torch.equal(rotmat_to_axis_angle(torch.eye(3)), torch.zeros(3))


def test_axis_angle_matches_scipy_and_round_trips():
    rng = np.random.default_rng(0)
    rotvec = Rotation.random(64, random_state=1).as_rotvec().astype(np.float32)
    rotvec[:4] *= 1e-7  # tiny angles
    rot = axis_angle_to_rotmat(torch.from_numpy(rotvec))
    assert np.allclose(rot.numpy(), Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-5)
    back = rotmat_to_axis_angle(rot).numpy()
    assert np.allclose(back, rotvec, atol=1e-4)
    mats = Rotation.random(16, random_state=rng.integers(1 << 30)).as_matrix()
    ours = rotmat_to_axis_angle(torch.from_numpy(mats).float()).numpy()
    assert np.allclose(Rotation.from_rotvec(ours).as_matrix(), mats, atol=1e-5)


def test_deprecated_quat_wxyz_helpers_keep_their_order():
    from mahmr_ros.model.rotation import quaternion_to_axis_angle, rotmat_to_quaternion

    h = math.sqrt(0.5)
    assert torch.allclose(
        rotmat_to_quaternion(RZ90), torch.tensor([h, 0, 0, h]), atol=1e-6
    )  # w first
    aa = quaternion_to_axis_angle(torch.tensor([h, 0, 0, h]))
    assert torch.allclose(aa, torch.tensor([0, 0, math.pi / 2]))
