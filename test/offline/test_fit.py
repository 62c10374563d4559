"""The Anny fit recovers a known pose, phenotype and placement from the model's own keypoints (exact GT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.offline.anny_body import FIT_BONES
from mahmr_ros.offline.fit import AnnyFitter
from mahmr_ros.offline.place import assumed_K, project

# Anny model frame (x left, y back, z up) -> camera frame of a person facing the camera
R_FACE = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def _synthetic_people(anny_body, seed=0):
    rng = np.random.default_rng(seed)
    aa = torch.as_tensor(rng.normal(0.0, 0.15, (3, len(FIT_BONES), 3)))
    age = torch.tensor([0.3, 0.55, 0.8], dtype=torch.float64)
    height = torch.tensor([0.5, 0.3, 0.7], dtype=torch.float64)
    full = anny_body.forward_full(aa, age, height)
    R = np.stack([Rotation.from_euler("y", a, degrees=True).as_matrix() @ R_FACE for a in (20, -40, 150)])
    t = np.array([[-1.0, 0.3, 4.0], [0.5, 0.2, 3.0], [1.2, 0.4, 6.0]])
    kp_cam = np.einsum("pij,pkj->pki", R, full["keypoints"].numpy()) + t[:, None]
    return kp_cam, R, t, full["height_m"].numpy()


def test_fit_recovers_rotation_height_and_translation(anny_body):
    kp_cam, R_true, t_true, height_true = _synthetic_people(anny_body)
    K = assumed_K(640, 480)
    uv = project(kp_cam, K)
    world = kp_cam - kp_cam[:, [11, 12]].mean(1, keepdims=True)  # hip-centred, like BlazePose
    fitter = AnnyFitter(anny_body, iterations=60, weight_phenotype_prior=1e-5, weight_pose_prior=1e-6)
    res = fitter.fit(world, uv, np.ones(kp_cam.shape[:2]), K)
    height_fit = anny_body.height_m(res.age, res.height_ph)
    np.testing.assert_allclose(height_fit, height_true, atol=0.03)
    np.testing.assert_allclose(res.transl, t_true, atol=0.08)
    # the posed keypoints are what the data pins down (global rotation trades a little with the spine)
    with torch.no_grad():
        kp = anny_body.keypoints_fast(
            torch.as_tensor(res.bone_aa), torch.as_tensor(res.age), torch.as_tensor(res.height_ph)
        )
    kp_fit = np.einsum("pij,pkj->pki", res.R_cam_anny, kp.numpy()) + res.transl[:, None]
    mpjpe = np.linalg.norm(kp_fit - kp_cam, axis=-1).mean(1)
    assert np.all(mpjpe < 0.04), mpjpe  # metres; the back-facing person converges slowest (~3 cm)
    for p in range(3):
        err_deg = np.degrees(Rotation.from_matrix(res.R_cam_anny[p] @ R_true[p].T).magnitude())
        assert err_deg < 12.0, (p, err_deg)
    assert np.all(res.rms_2d_px < 2.0) and np.all(res.rms_3d_m < 0.02)


def test_fit_handles_missing_landmarks(anny_body):
    kp_cam, _, t_true, _ = _synthetic_people(anny_body, seed=1)
    K = assumed_K(640, 480)
    uv = project(kp_cam, K)
    world = kp_cam - kp_cam[:, [11, 12]].mean(1, keepdims=True)
    conf = np.ones(kp_cam.shape[:2])
    conf[:, 19:21] = 0.0  # small toes: BlazePose has none
    uv[:, 19:21] = np.nan
    world[:, 19:21] = np.nan
    res = AnnyFitter(anny_body, iterations=30).fit(world, uv, conf, K)
    assert np.all(np.isfinite(res.transl))
    assert np.all(np.abs(res.transl[:, 2] - t_true[:, 2]) / t_true[:, 2] < 0.1)


def test_warm_start_from_the_last_frame(anny_body):
    kp_cam, _, t_true, _ = _synthetic_people(anny_body, seed=2)
    K = assumed_K(640, 480)
    uv = project(kp_cam, K)
    world = kp_cam - kp_cam[:, [11, 12]].mean(1, keepdims=True)
    conf = np.ones(kp_cam.shape[:2])
    fitter = AnnyFitter(anny_body, iterations=30)
    first = fitter.fit(world, uv, conf, K)
    # the people moved 20 cm sideways: 3 warm-started iterations land where 30 cold ones did
    moved = kp_cam + [0.2, 0.0, 0.0]
    second = fitter.fit(world, project(moved, K), conf, K, init=first, iterations=3)
    np.testing.assert_allclose(second.transl, first.transl + [0.2, 0.0, 0.0], atol=0.05)
    assert np.all(second.rms_2d_px < first.rms_2d_px + 1.0)
    with pytest.raises(ValueError, match="init has 3 people, the landmarks 2"):
        fitter.fit(world[:2], uv[:2], conf[:2], K, init=first)
