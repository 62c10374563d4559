"""The tabulated keypoint path agrees with the exact Anny forward; phenotype helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mahmr_ros.offline.anny_body import FIT_BONES, JOINT_NAMES, age_years, joints_from_keypoints


def test_fast_keypoints_match_the_full_model(anny_body):
    rng = np.random.default_rng(0)
    aa = torch.as_tensor(rng.normal(0.0, 0.3, (3, len(FIT_BONES), 3)))
    age = torch.tensor([0.1, 0.55, 0.9], dtype=torch.float64)  # between grid nodes on purpose
    height = torch.tensor([0.2, 0.5, 0.85], dtype=torch.float64)
    fast = anny_body.keypoints_fast(aa, age, height)
    full = anny_body.forward_full(aa, age, height)
    assert fast.shape == (3, 23, 3)
    # between nodes the bilinear tables are off by ~2 mm (rest bone orientations are not linear)
    assert (fast - full["keypoints"]).abs().max() < 5e-3  # metres
    np.testing.assert_allclose(
        anny_body.height_m(age, height), full["height_m"].numpy(), atol=5e-3
    )


def test_reduced_chain_is_exact_at_grid_nodes(anny_body):
    # the 11-bone chain reproduces Anny's 104-bone kinematics exactly where tables are not
    # interpolated
    rng = np.random.default_rng(1)
    aa = torch.as_tensor(rng.normal(0.0, 0.5, (3, len(FIT_BONES), 3)))
    age = torch.tensor([0.0, 1 / 3, 1.0], dtype=torch.float64)
    height = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    fast = anny_body.keypoints_fast(aa, age, height)
    full = anny_body.forward_full(aa, age, height)["keypoints"]
    assert (fast - full).abs().max() < 1e-8
    assert (anny_body.keypoints_fk(aa, age, height) - full).abs().max() < 1e-8


def test_keypoints_fast_is_differentiable_in_pose_and_phenotypes(anny_body):
    aa = torch.zeros(1, len(FIT_BONES), 3, dtype=torch.float64, requires_grad=True)
    age = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    height = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    anny_body.keypoints_fast(aa, age, height)[..., 2].sum().backward()
    assert aa.grad.abs().sum() > 0 and age.grad.abs() > 0 and height.grad.abs() > 0


def test_height_grows_with_age_and_height_phenotype(anny_body):
    h = anny_body.height_m([0.0, 0.33, 0.67], [0.5, 0.5, 0.5])
    assert h[0] < 1.0 < h[1] < 1.6 < h[2] < 2.0  # baby < child < young adult
    tall, short = anny_body.height_m([0.67, 0.67], [1.0, 0.0])
    assert tall > short + 0.1


def test_age_years_and_joints():
    assert age_years(0.0) == pytest.approx(1.0)
    assert age_years(2 / 3) == pytest.approx(25.0)
    kp = np.arange(23 * 3, dtype=np.float64).reshape(23, 3)
    joints = joints_from_keypoints(kp)
    assert joints.shape == (24, 3) and len(JOINT_NAMES) == 24
    np.testing.assert_allclose(joints[0], 0.5 * (kp[11] + kp[12]))


def test_forward_full_matches_annys_own_forward(anny_body):
    # the anchor-node rest tables are exact (blendshape coefficients are bilinear between anchors)
    assert anny_body._rest_nodes is not None, (
        "rest node tables were not built for the cached Anny model"
    )
    rng = np.random.default_rng(2)
    aa = torch.as_tensor(rng.normal(0.0, 0.4, (4, len(FIT_BONES), 3)))
    age = torch.tensor([0.05, 0.3, 0.61, 0.97], dtype=torch.float64)  # inside four different cells
    height = torch.tensor([0.1, 0.77, 0.5, 0.35], dtype=torch.float64)
    ours = anny_body.forward_full(aa, age, height)
    ref = anny_body.model(
        anny_body.delta_transforms(aa), phenotype_kwargs=anny_body.phenotypes(age, height)
    )
    assert (ours["vertices"] - ref["vertices"]).abs().max() < 1e-9  # metres
    assert (ours["rest_vertices"] - ref["rest_vertices"]).abs().max() < 1e-9
    assert (ours["keypoints"] - anny_body.regressor(ref)).abs().max() < 1e-9
