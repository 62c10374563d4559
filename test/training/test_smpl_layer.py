"""One SMPL implementation: the training layer wraps ``SMPLBody``; both agree with a hand-written
LBS reference, add the kid blend as spec §1.9 says, and the closed-form root joint equals the
skinned one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.body import SMPLBody, SMPLFileError
from training.smpl_layer import SMPLLayer


def reference_lbs(arrays: dict, kid: np.ndarray | None, rotmats: np.ndarray, betas: np.ndarray):
    """Textbook SMPL in numpy float64 (Loper et al. 2015), independent of smplx: one person.

    Returns vertices (V, 3) and the 45 joints (24 posed joints + the file's 21 vertex joints).
    """
    v_t = arrays["v_template"].astype(np.float64)
    dirs = arrays["shapedirs"][:, :, :10].astype(np.float64)
    if kid is not None:
        dirs = np.concatenate([dirs, ((kid - kid.mean(0)) - v_t)[:, :, None]], axis=2)
    v_shaped = v_t + dirs @ betas[: dirs.shape[2]]
    J = arrays["J_regressor"] @ v_shaped  # (24, 3)
    features = (rotmats[1:] - np.eye(3)).reshape(-1)  # (207,)
    v_posed = v_shaped + arrays["posedirs"] @ features
    parents = arrays["kintree_table"][0].astype(int)
    G = np.zeros((24, 4, 4))
    for i in range(24):
        local = np.eye(4)
        local[:3, :3] = rotmats[i]
        local[:3, 3] = J[i] - (J[parents[i]] if i else 0.0)
        G[i] = local if i == 0 else G[parents[i]] @ local
    A = G.copy()
    A[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)  # undo the rest pose
    T = np.einsum("vj,jab->vab", arrays["weights"], A)
    verts = np.einsum("vab,vb->va", T[:, :3, :3], v_posed) + T[:, :3, 3]
    joints = np.concatenate([G[:, :3, 3], verts[arrays["joint_vertex_ids"]]])
    return verts, joints


def _random_people(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    aa = rng.normal(0, 0.4, (n, 24, 3))
    aa[:, 0] += [np.pi, 0, 0]  # standing in the camera frame
    betas = np.concatenate([rng.normal(0, 1, (n, 10)), rng.uniform(0, 1, (n, 1))], 1)
    return aa, Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(n, 24, 3, 3), betas


def test_training_layer_and_inference_body_match_a_hand_written_lbs(synthetic_smpl):
    model, kid = synthetic_smpl
    body = SMPLBody(model, kid)
    layer = SMPLLayer(model, kid, num_betas=11)
    arrays = dict(np.load(model))
    aa, rot, betas = _random_people(3)
    v_layer, j_layer = layer(
        torch.as_tensor(rot, dtype=torch.float32), torch.as_tensor(betas).float()
    )
    v_body, j_body = body(
        aa.reshape(3, 72).astype(np.float32), betas.astype(np.float32)
    )  # axis-angle path
    for i in range(3):
        v_ref, j_ref = reference_lbs(arrays, np.load(kid), rot[i], betas[i])
        np.testing.assert_allclose(v_layer[i].detach().numpy(), v_ref, atol=2e-5)
        np.testing.assert_allclose(j_layer[i].detach().numpy(), j_ref, atol=2e-5)
        np.testing.assert_allclose(v_body[i], v_ref, atol=2e-5)
        np.testing.assert_allclose(j_body[i], j_ref, atol=2e-5)


def test_one_implementation_shares_the_body_arrays(synthetic_smpl):
    body = SMPLBody(*synthetic_smpl)
    layer = SMPLLayer(body=body, num_betas=11)
    assert layer.smpl is body.layer  # not a second copy of the model
    np.testing.assert_array_equal(layer.faces, body.faces)


def test_kid_blend_column_and_zero_pose(synthetic_smpl):
    model, kid = synthetic_smpl
    layer = SMPLLayer(model, kid, num_betas=11)
    data = np.load(model)
    kid_t = np.load(kid)
    expected = (kid_t - kid_t.mean(0)) - data["v_template"]
    np.testing.assert_allclose(layer.shapedirs[:, :, 10].numpy(), expected, atol=1e-5)
    rot = torch.eye(3).expand(2, 24, 3, 3)
    betas = torch.zeros(2, 11)
    betas[1, 10] = 1.0
    verts, joints = layer(rot, betas)
    assert verts.shape == (2, layer.num_vertices, 3) and joints.shape == (2, 45, 3)
    np.testing.assert_allclose(verts[0].numpy(), data["v_template"], atol=1e-5)
    np.testing.assert_allclose(verts[1].numpy(), kid_t - kid_t.mean(0), atol=1e-5)
    height = lambda v: float(v[:, 1].max() - v[:, 1].min())  # noqa: E731
    assert height(verts[1]) < height(verts[0]) - 0.3


def test_closed_form_root_joint_equals_the_skinned_root(synthetic_smpl):
    layer = SMPLLayer(*synthetic_smpl, num_betas=11)
    _, rot, betas = _random_people(4, seed=1)
    betas_t = torch.as_tensor(betas, dtype=torch.float32)
    _, joints = layer(torch.eye(3).expand(4, 24, 3, 3), betas_t)
    torch.testing.assert_close(layer.root_joint(betas_t), joints[:, 0], atol=1e-5, rtol=0)
    _, posed = layer(
        torch.as_tensor(rot, dtype=torch.float32), betas_t
    )  # the root joint ignores the pose
    torch.testing.assert_close(layer.root_joint(betas), posed[:, 0], atol=1e-5, rtol=0)


def test_global_rotation_rotates_about_the_root(synthetic_smpl):
    layer = SMPLLayer(*synthetic_smpl, num_betas=11)
    R = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # pi about x
    rot = torch.eye(3).repeat(1, 24, 1, 1)
    v0, j0 = layer(rot, torch.zeros(1, 11))
    rot[0, 0] = R
    v1, j1 = layer(rot, torch.zeros(1, 11))
    root = j0[0, 0]
    np.testing.assert_allclose(v1[0].numpy(), ((v0[0] - root) @ R.T + root).numpy(), atol=1e-5)


def test_errors_name_the_problem(tmp_path, synthetic_smpl):
    with pytest.raises(SMPLFileError, match="nope.npz"):
        SMPLLayer(tmp_path / "nope.npz", num_betas=10)
    with pytest.raises(ValueError, match="kid_template_path"):
        SMPLLayer(synthetic_smpl[0], None, num_betas=11)
    np.savez(tmp_path / "bad.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(SMPLFileError, match="bad.npz"):
        SMPLLayer(tmp_path / "bad.npz", num_betas=10)
    with pytest.raises(ValueError, match="betas have 10 entries, expected 11"):
        SMPLLayer(*synthetic_smpl, num_betas=11)(
            torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10)
        )
