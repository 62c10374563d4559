"""The Anny fit recovers a known pose, phenotype and placement from the model's own keypoints
(exact GT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.geometry import project
from mahmr_ros.offline.anny_body import FIT_BONES
from mahmr_ros.offline.fit import AnnyFitter
from mahmr_ros.offline.place import assumed_K

# Anny model frame (x left, y back, z up) -> camera frame of a person facing the camera
R_FACE = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def _synthetic_people(anny_body, seed=0):
    rng = np.random.default_rng(seed)
    aa = torch.as_tensor(rng.normal(0.0, 0.15, (3, len(FIT_BONES), 3)))
    age = torch.tensor([0.3, 0.55, 0.8], dtype=torch.float64)
    height = torch.tensor([0.5, 0.3, 0.7], dtype=torch.float64)
    full = anny_body.forward_full(aa, age, height)
    R = np.stack(
        [Rotation.from_euler("y", a, degrees=True).as_matrix() @ R_FACE for a in (20, -40, 150)]
    )
    t = np.array([[-1.0, 0.3, 4.0], [0.5, 0.2, 3.0], [1.2, 0.4, 6.0]])
    kp_cam = np.einsum("pij,pkj->pki", R, full["keypoints"].numpy()) + t[:, None]
    return kp_cam, R, t, full["height_m"].numpy()


def _landmarks(kp_cam):
    """What a landmark network reports for camera-frame keypoints (P, 23, 3): K, pixels,
    hip-centred 3D (like BlazePose's world landmarks) and full confidence."""
    K = assumed_K(640, 480)
    world = kp_cam - kp_cam[:, [11, 12]].mean(1, keepdims=True)
    return K, project(kp_cam, K), world, np.ones(kp_cam.shape[:2])


def test_fit_recovers_rotation_height_and_translation(anny_body):
    kp_cam, R_true, t_true, height_true = _synthetic_people(anny_body)
    K, uv, world, conf = _landmarks(kp_cam)
    fitter = AnnyFitter(
        anny_body, iterations=60, weight_phenotype_prior=1e-5, weight_pose_prior=1e-6
    )
    res = fitter.fit(world, uv, conf, K)
    height_fit = anny_body.height_m(res.age, res.height_ph)
    np.testing.assert_allclose(height_fit, height_true, atol=0.03)
    np.testing.assert_allclose(res.transl, t_true, atol=0.08)
    # the posed keypoints are what the data pins down (global rotation trades a little with the
    # spine)
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
    K, uv, world, conf = _landmarks(kp_cam)
    conf[:, 19:21] = 0.0  # small toes: BlazePose has none
    uv[:, 19:21] = np.nan
    world[:, 19:21] = np.nan
    res = AnnyFitter(anny_body, iterations=30).fit(world, uv, conf, K)
    assert np.all(np.isfinite(res.transl))
    assert np.all(np.abs(res.transl[:, 2] - t_true[:, 2]) / t_true[:, 2] < 0.1)


def test_warm_start_from_the_last_frame(anny_body):
    kp_cam, _, t_true, _ = _synthetic_people(anny_body, seed=2)
    K, uv, world, conf = _landmarks(kp_cam)
    fitter = AnnyFitter(anny_body, iterations=30)
    first = fitter.fit(world, uv, conf, K)
    # the people moved 20 cm sideways: 3 warm-started iterations land where 30 cold ones did
    moved = kp_cam + [0.2, 0.0, 0.0]
    second = fitter.fit(world, project(moved, K), conf, K, init=first, iterations=3)
    np.testing.assert_allclose(second.transl, first.transl + [0.2, 0.0, 0.0], atol=0.05)
    assert np.all(second.rms_2d_px < first.rms_2d_px + 1.0)
    with pytest.raises(ValueError, match="init has 3 people, the landmarks 2"):
        fitter.fit(world[:2], uv[:2], conf[:2], K, init=first)


# ---- fitting what is visible (PersonKeypoints, unknown keypoints, no 3D landmarks) --------------


def _standing_person(anny_body, camera_height_m, z, x=0.0, yaw_deg=10.0, age=0.6, height_ph=0.5):
    """True camera-frame keypoints (23, 3) of a standing body on a floor ``camera_height_m`` below
    a level camera, and its height."""
    from mahmr_ros.offline.anny_body import standing_aa
    from mahmr_ros.offline.fit import LEVEL_UP, upright_rotation
    from mahmr_ros.offline.floor import HEELS

    aa = torch.as_tensor(standing_aa()[None])
    with torch.no_grad():
        kp = anny_body.keypoints_fast(aa, torch.tensor([age]), torch.tensor([height_ph]))[
            0
        ].numpy()
    lift = anny_body.keypoint_lift_m([age], [height_ph])[0]
    kp = kp @ upright_rotation(LEVEL_UP, np.radians(yaw_deg)).T
    soles = max(kp[j, 1] + lift[j] for j in HEELS)
    return kp + [x, camera_height_m - soles, z], anny_body.height_m([age], [height_ph])[0]


def _as_person(kp_cam, K, image_wh, clamp_to_border=False, world=True):
    """What a pose network reports: pixels (clamped into the image at score 0.5 when
    ``clamp_to_border``, as a crop-based network does for cut-off joints; else left outside at
    score 0.5)."""
    from mahmr_ros.offline.keypoints import PersonKeypoints

    W, H = image_wh
    uv = project(kp_cam, K)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= W - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= H - 1)
    if clamp_to_border:
        uv = np.clip(uv, 0, [W - 1, H - 1])
    scores = np.where(inside, 0.95, 0.5)
    hips = kp_cam[[11, 12]].mean(0)
    box = np.array([*uv.min(0), *uv.max(0)])
    return PersonKeypoints(box, uv, scores, 0.9, (kp_cam - hips) if world else None)


def _fitted_keypoints_cam(anny_body, res) -> np.ndarray:
    """(23, 3) camera-frame keypoints of the first fitted person (its posed body, rotated and
    placed)."""
    with torch.no_grad():
        kp = anny_body.keypoints_fast(
            torch.as_tensor(res.bone_aa), torch.as_tensor(res.age), torch.as_tensor(res.height_ph)
        )[0].numpy()
    return kp @ res.R_cam_anny[0].T + res.transl[0]


def _leg_angles_deg(kp, hip: int, knee: int, ankle: int) -> tuple[float, float]:
    """(knee bend, thigh away from straight down) of one leg, degrees (camera frame, y down)."""
    thigh, shin = kp[knee] - kp[hip], kp[ankle] - kp[knee]
    bend = np.degrees(np.arccos(thigh @ shin / np.linalg.norm(thigh) / np.linalg.norm(shin)))
    down = np.degrees(np.arccos(thigh @ [0.0, 1.0, 0.0] / np.linalg.norm(thigh)))
    return bend, down


@pytest.mark.parametrize(("clamp", "world"), [(True, True), (True, False), (False, False)])
def test_cut_at_mid_thigh_is_not_pulled_into_a_crouch(anny_body, clamp, world):
    """The image ends at mid-thigh: knees and feet are unknown, whatever the pose network reports
    for them (clamped onto the border, or outside the image): the legs stand (straight knees,
    thighs down)."""
    from mahmr_ros.offline.keypoints import fit_targets

    K = assumed_K(640, 480)
    kp_cam, _ = _standing_person(anny_body, camera_height_m=1.5, z=2.0, yaw_deg=15.0)
    uv_true = project(kp_cam, K)
    cut = int(0.5 * (uv_true[[11, 12], 1].mean() + uv_true[[13, 14], 1].mean()))  # mid-thigh row
    person = _as_person(kp_cam, K, (640, cut), clamp_to_border=clamp, world=world)
    world_t, uv, conf, has_world = fit_targets([person], (640, cut))
    assert has_world.tolist() == [world]
    assert np.all(conf[0, 13:] == 0) and np.all(
        conf[0, 5:13] > 0
    )  # knees down unknown, upper body known
    res = AnnyFitter(anny_body, iterations=20).fit(world_t, uv, conf, K)
    kp = _fitted_keypoints_cam(anny_body, res)
    for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
        bend, down = _leg_angles_deg(kp, hip, knee, ankle)
        assert bend < 15.0 and down < 20.0, (bend, down)
    pelvis = kp[[11, 12]].mean(0)
    true_pelvis = kp_cam[[11, 12]].mean(0)
    assert abs(pelvis[2] - true_pelvis[2]) < 0.1 * true_pelvis[2]


def test_a_clamped_border_keypoint_would_crouch_the_legs(anny_body):
    """The same cut-off person with the clamped knees and feet taken at face value (the old
    behaviour): the fit bends the legs to reach the border, which is what treating them as unknown
    avoids."""
    from mahmr_ros.offline.keypoints import fit_targets

    K = assumed_K(640, 480)
    kp_cam, _ = _standing_person(anny_body, camera_height_m=1.5, z=2.0, yaw_deg=15.0)
    uv_true = project(kp_cam, K)
    cut = int(0.5 * (uv_true[[11, 12], 1].mean() + uv_true[[13, 14], 1].mean()))
    person = _as_person(kp_cam, K, (640, cut), clamp_to_border=True, world=False)
    _, uv, conf, _ = fit_targets(
        [person], (640, cut + 10), border_px=0.0
    )  # a taller image: all "seen"
    assert np.all(conf[0, 13:17] > 0)
    res = AnnyFitter(anny_body, iterations=20).fit(np.full((1, 23, 3), np.nan), uv, conf, K)
    bend, down = _leg_angles_deg(_fitted_keypoints_cam(anny_body, res), 11, 13, 15)
    assert max(bend, down) > 30.0, (
        bend,
        down,
    )  # measured: thigh ~45 degrees forward, knee ~26 bent


@pytest.mark.parametrize("world", [True, False])
def test_head_and_shoulders_portrait_is_placed_at_its_depth(anny_body, world):
    """An adult 0.9 m from a camera at head height, seen from the chest up (face + shoulders): the
    pelvis lands in front of the camera, under the shoulders, within 15 % of its true depth (the
    size of the visible part against the adult prior sets the depth; with 3D landmarks their size
    does)."""
    from mahmr_ros.offline.keypoints import fit_targets

    K = assumed_K(640, 480)
    kp_cam, _ = _standing_person(anny_body, camera_height_m=1.55, z=0.9, yaw_deg=0.0)
    person = _as_person(kp_cam, K, (640, 480), world=world)
    world_t, uv, conf, _ = fit_targets([person], (640, 480))
    assert np.all(conf[0, :7] > 0) and np.all(
        conf[0, 11:] == 0
    )  # face + shoulders, no hips or legs
    res = AnnyFitter(anny_body, iterations=20).fit(world_t, uv, conf, K)
    kp = _fitted_keypoints_cam(anny_body, res)
    pelvis, true_pelvis = kp[[11, 12]].mean(0), kp_cam[[11, 12]].mean(0)
    assert np.all(kp[:, 2] > 0.15)  # every keypoint in front of the camera
    assert abs(pelvis[2] - true_pelvis[2]) < 0.15 * true_pelvis[2], (pelvis, true_pelvis)
    trunk = kp[[5, 6]].mean(0) - pelvis
    assert trunk @ [0.0, -1.0, 0.0] > 0.9 * np.linalg.norm(
        trunk
    )  # upright: shoulders above the pelvis
