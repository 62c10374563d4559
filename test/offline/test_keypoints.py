"""PersonKeypoints, the fit's input: validation, BlazePose mapping, merging, and which keypoints
are known."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.offline.keypoints import (
    KEYPOINT_WEIGHTS,
    PersonKeypoints,
    fit_targets,
    from_blazepose,
    ray_rotation,
    with_world,
)
from mahmr_ros.offline.place import assumed_K
from mahmr_ros.offline.pose import PoseLandmarks


def _coco(uv, scores=None, world=None):
    uv = np.asarray(uv, np.float64)
    scores = np.full(len(uv), 0.9) if scores is None else scores
    return PersonKeypoints([0, 0, 10, 10], uv, scores, 0.8, world, source="movenet")


def test_shapes_are_checked_with_a_clear_message():
    with pytest.raises(ValueError, match="K = 17 .* or 23"):
        _coco(np.zeros((16, 2)))
    with pytest.raises(ValueError, match="keypoint_scores"):
        PersonKeypoints(np.zeros(4), np.zeros((17, 2)), np.zeros(16), 0.5)
    with pytest.raises(ValueError, match=r"world_m must be \(17, 3\)"):
        _coco(np.zeros((17, 2)), world=np.zeros((23, 3)))
    assert _coco(np.zeros((17, 2))).world_m is None


def test_unknown_keypoints_outside_on_the_border_or_low_score():
    rng = np.random.default_rng(0)
    uv = rng.uniform(50, 200, (17, 2))
    uv[1] = [-5.0, 100.0]  # outside (left)
    uv[2] = [100.0, 239.5]  # on the bottom border row of a 320x240 image (a clamped guess)
    uv[3] = [np.nan, np.nan]  # not given
    uv[4] = [100.0, 237.0]  # 2.5 px inside the border: seen
    scores = np.full(17, 0.9)
    scores[5] = 0.1  # low score
    world = rng.normal(0, 0.3, (17, 3))
    world_t, uv_t, conf, has_world = fit_targets([_coco(uv, scores, world), _coco(uv)], (320, 240))
    assert (
        uv_t.shape == (2, 23, 2) and conf.shape == (2, 23) and has_world.tolist() == [True, False]
    )
    unknown = [1, 2, 3, 5]
    assert np.all(conf[0, unknown] == 0) and np.isnan(uv_t[0, unknown]).all()
    assert np.isnan(world_t[0, unknown]).all()
    known = [k for k in range(17) if k not in unknown]
    np.testing.assert_allclose(conf[0, known], 0.9 * KEYPOINT_WEIGHTS[known])
    np.testing.assert_allclose(uv_t[0, known], uv[known])
    np.testing.assert_allclose(world_t[0, known], world[known])
    assert np.all(conf[:, 17:] == 0)  # COCO-17 has no feet points
    assert np.isnan(world_t[1]).all()  # no 3D landmarks for the second person
    assert fit_targets([], (320, 240))[2].shape == (0, 23)


def _landmarks(hip_uv):
    rng = np.random.default_rng(1)
    uv = rng.uniform(100, 400, (33, 2))
    uv[23], uv[24] = np.asarray(hip_uv) - [10, 0], np.asarray(hip_uv) + [10, 0]
    return PoseLandmarks(uv, rng.normal(0, 0.4, (33, 3)), rng.uniform(0, 1, 33), np.zeros(4), 0.9)


def test_from_blazepose_maps_the_33_landmarks_and_rotates_the_world_to_the_ray():
    K = assumed_K(640, 480)
    centre = _landmarks(K[:2, 2])
    person = from_blazepose(centre, K)
    assert person.source == "blazepose" and person.landmarks is centre
    # Anny order: nose, eyes (BlazePose 2, 5), ..., heels (29, 30) at 21, 22; small toes missing
    np.testing.assert_allclose(
        person.keypoints_px[[0, 1, 2, 21, 22]], centre.uv_px[[0, 2, 5, 29, 30]]
    )
    np.testing.assert_allclose(person.keypoint_scores[[0, 17, 18]], centre.visibility[[0, 31, 32]])
    assert np.isnan(person.keypoints_px[[19, 20]]).all() and np.all(
        person.keypoint_scores[[19, 20]] == 0
    )
    # hips at the principal point: BlazePose's axes are the camera's
    np.testing.assert_allclose(person.world_m[[0, 5, 21]], centre.world_m[[0, 11, 29]], atol=1e-12)
    # hips off-axis: the landmarks turn with the ray; distances are kept
    side = _landmarks([600.0, 240.0])
    moved = from_blazepose(side, K)
    R = ray_rotation(0.5 * (side.uv_px[23] + side.uv_px[24]), K)
    np.testing.assert_allclose(moved.world_m[5], R @ side.world_m[11])
    assert np.linalg.norm(moved.world_m[5] - side.world_m[11]) > 0.01
    np.testing.assert_allclose(np.linalg.norm(moved.world_m[5]), np.linalg.norm(side.world_m[11]))


def test_with_world_keeps_the_detector_keypoints_and_adds_blazepose_feet_and_3d():
    K = assumed_K(640, 480)
    blaze = from_blazepose(_landmarks([320.0, 240.0]), K)
    detector = _coco(np.full((17, 2), 7.0), np.full(17, 0.6))
    merged = with_world(detector, blaze)
    assert merged.keypoints_px.shape == (23, 2) and merged.source == "movenet+blazepose"
    np.testing.assert_allclose(merged.keypoints_px[:17], 7.0)
    np.testing.assert_allclose(merged.keypoint_scores[:17], 0.6)
    np.testing.assert_allclose(merged.keypoints_px[17:], blaze.keypoints_px[17:])
    np.testing.assert_allclose(merged.world_m, blaze.world_m)
    assert merged.score == detector.score and merged.landmarks is blaze.landmarks
