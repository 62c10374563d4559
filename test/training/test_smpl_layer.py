"""The batched SMPL layer agrees with smplx and adds the kid blend as spec §1.9 says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.smpl_layer import SMPLLayer


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
    np.testing.assert_allclose(layer.root_joint(betas).numpy(), joints[:, 0].numpy(), atol=1e-5)


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
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        SMPLLayer(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="kid_template_path"):
        SMPLLayer(synthetic_smpl[0], None, num_betas=11)
    np.savez(tmp_path / "bad.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="lacks SMPL arrays"):
        SMPLLayer(tmp_path / "bad.npz", num_betas=10)
