import math

import numpy as np
import pytest
import torch

from mahmr_ros.body import JOINT_NAMES, SMPLBody, SMPLFileError, make_synthetic_smpl
from mahmr_ros.model.rotation import axis_angle_to_rotmat


@pytest.fixture(scope="module")
def kid_body(synthetic_files):
    return SMPLBody(*synthetic_files)


@pytest.fixture(scope="module")
def adult_body(synthetic_files):
    return SMPLBody(synthetic_files[0])


def test_zero_pose_is_the_template_plus_translation(kid_body):
    t = torch.tensor([[0.1, -0.2, 3.0]])
    verts, joints = kid_body.forward(torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 11), t)
    template = torch.as_tensor(kid_body.arrays["v_template"], dtype=torch.float32)
    assert verts.shape == (1, 6890, 3) and joints.shape == (1, 45, 3) and len(JOINT_NAMES) == 45
    assert torch.allclose(verts[0], template + t, atol=1e-5)
    J = torch.as_tensor(kid_body.arrays["J_regressor"], dtype=torch.float32) @ template
    assert torch.allclose(joints[0, :24], J + t, atol=1e-5)
    # Vertex joints (24..44) are the vertices at the stored indices (nose = SMPL vertex 332).
    assert torch.equal(joints[0, 24], verts[0, 332])


def test_rotation_matrices_and_axis_angle_agree(kid_body):
    gen = torch.Generator().manual_seed(0)
    aa = torch.randn(2, 24, 3, generator=gen) * 0.4
    betas = torch.randn(2, 11, generator=gen)
    a = kid_body.forward(axis_angle_to_rotmat(aa), betas)
    b = kid_body.forward(aa.reshape(2, 72), betas)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


def test_global_half_turn_about_x_maps_canonical_to_camera_axes(kid_body):
    """A standing person in the camera frame has global orient ~ pi about x (spec §8 #15): head up
    = -y."""
    pose = torch.zeros(1, 72)
    pose[0, 0] = math.pi
    verts, joints = kid_body.forward(pose, torch.zeros(1, 11))
    rest, rest_joints = kid_body.forward(torch.zeros(1, 72), torch.zeros(1, 11))
    # Rotation about the root joint: x kept, y and z mirrored about the pelvis.
    root = rest_joints[0, 0]
    expected = (rest[0] - root) * torch.tensor([1.0, -1.0, -1.0]) + root
    assert torch.allclose(verts[0], expected, atol=1e-5)
    assert joints[0, 15, 1] < joints[0, 0, 1]


def test_height_hand_checked_and_kid_blend_makes_a_child_shorter(kid_body):
    betas = torch.zeros(4, 11)
    betas[1, 0] = 1.0  # synthetic component 0: +6 cm per unit
    betas[2, 10] = 1.0  # full kid blend: the 1.10 m kid template
    betas[3, 10] = 0.5
    h = kid_body.height(betas)
    assert torch.allclose(h[:2], torch.tensor([1.70, 1.76]), atol=2e-3)
    assert abs(h[2].item() - 1.10) < 0.02 and h[2] < h[3] < h[0]
    assert kid_body.height(np.zeros(10)) == pytest.approx(1.70, abs=2e-3)  # 10 betas: kid blend 0


def test_numpy_in_numpy_out_and_empty_batch(kid_body):
    verts, joints = kid_body.forward(np.zeros((0, 72)), np.zeros((0, 11)))
    assert (
        isinstance(verts, np.ndarray)
        and verts.shape == (0, 6890, 3)
        and joints.shape == (0, 45, 3)
    )


def test_adult_body_rejects_a_nonzero_kid_blend_and_bad_inputs(adult_body):
    assert adult_body.num_betas == 10 and not adult_body.has_kid_blend
    adult_body.forward(torch.zeros(1, 72), torch.zeros(1, 11))  # a zero 11th beta is fine
    with pytest.raises(ValueError, match="kid_template_path"):
        adult_body.forward(torch.zeros(1, 72), torch.tensor([[0.0] * 10 + [0.7]]))
    with pytest.raises(ValueError, match=r"pose must be \(P, 24, 3, 3\) or \(P, 72\)"):
        adult_body.forward(torch.zeros(1, 69), torch.zeros(1, 10))


def test_topology(kid_body):
    topo = kid_body.topology()
    assert (
        topo.body_model == "smpl"
        and topo.num_vertices == 6890
        and topo.joint_names[:2] == ["pelvis", "left_hip"]
    )


def test_file_errors_name_the_file(tmp_path, synthetic_files):
    with pytest.raises(SMPLFileError, match=r"SMPL_NEUTRAL\.pkl"):
        SMPLBody(tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(SMPLFileError, match=r"kid template not found: .*smpl_kid_template\.npy"):
        SMPLBody(synthetic_files[0], tmp_path / "smpl_kid_template.npy")
    np.save(tmp_path / "kid_small.npy", np.zeros((100, 3)))
    with pytest.raises(SMPLFileError, match=r"kid_small\.npy: kid template has shape \(100, 3\)"):
        SMPLBody(synthetic_files[0], tmp_path / "kid_small.npy")
    small = make_synthetic_smpl(tmp_path / "small.npz", num_vertices=700)
    arrays = dict(np.load(small))
    del arrays["joint_vertex_ids"]
    np.savez(tmp_path / "noids.npz", **arrays)
    with pytest.raises(SMPLFileError, match=r"noids\.npz: 700 vertices but no 'joint_vertex_ids'"):
        SMPLBody(tmp_path / "noids.npz")


def test_evaluation_regressors(tmp_path, synthetic_files):
    h36m = np.zeros((17, 6890))
    h36m[np.arange(17), np.arange(17) * 100] = 1.0  # one-hot rows pick vertices
    extra = np.zeros((9, 6890))
    extra[np.arange(9), 5000 + np.arange(9)] = 1.0
    np.save(tmp_path / "h36m.npy", h36m)
    np.save(tmp_path / "extra.npy", extra)
    body = SMPLBody(synthetic_files[0], h36m_regressor_path=tmp_path / "h36m.npy",
                    extra_regressor_path=tmp_path / "extra.npy")  # fmt: skip
    verts, joints = body.forward(torch.zeros(1, 72), torch.zeros(1, 10))
    assert torch.allclose(body.h36m_joints(verts)[0], verts[0, ::100][:17])
    cp = body.crowdpose_joints(verts, joints)[0]
    assert torch.equal(cp[0], joints[0, 16]) and torch.equal(
        cp[12], verts[0, 5003]
    )  # head-top = extra #3
    np.save(tmp_path / "bad.npy", np.zeros((17, 10)))
    with pytest.raises(
        SMPLFileError, match=r"bad\.npy: regressor is \(17, 10\), expected \(17, 6890\)"
    ):
        SMPLBody(synthetic_files[0], h36m_regressor_path=tmp_path / "bad.npy")


def test_device_names_are_checked(synthetic_files):
    from mahmr_ros.body import resolve_device

    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        SMPLBody(synthetic_files[0], device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:0")
