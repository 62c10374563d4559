"""Alignment, errors and matching against hand-computed cases."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from training.eval.metrics import (
    box_iou,
    detection_scores,
    greedy_match_2d,
    joint_errors,
    pa_errors,
    similarity_align,
)


def test_procrustes_recovers_a_known_similarity_transform():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(14, 3))
    R = Rotation.from_rotvec([0.3, -1.2, 0.7]).as_matrix()
    pred = 0.7 * gt @ R.T + np.array([1.0, -2.0, 5.0])
    np.testing.assert_allclose(similarity_align(pred, gt), gt, atol=1e-9)
    assert pa_errors(pred, gt).max() < 1e-9


def test_procrustes_never_reflects():
    gt = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    mirrored = gt * np.array([-1, 1, 1])
    aligned = similarity_align(mirrored, gt)
    # a rotation cannot undo a mirror: some error must remain
    assert np.linalg.norm(aligned - gt, axis=1).max() > 0.1


def test_joint_errors_align_at_the_root():
    gt = np.array([[0, 0, 0], [0, 1, 0.0]])
    pred = gt + np.array([5, 5, 5]) + np.array([[0, 0, 0], [0.3, 0, 0.4]])
    np.testing.assert_allclose(joint_errors(pred, gt, 0), [0.0, 0.5])
    np.testing.assert_allclose(joint_errors(pred, gt, None)[0], np.sqrt(75))


def test_box_iou_hand_case():
    assert box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 1, 3, 3.0])) == 1 / 7


def test_greedy_match_takes_lowest_distance_first_and_respects_iou():
    gt = np.array([[[0, 0], [10, 10]], [[100, 100], [110, 110.0]]])
    pred = np.array(
        [
            [[101, 101], [111, 111]],  # near GT 1
            [[1, 0], [10, 11]],  # near GT 0
            [[50, 50], [60, 60]],  # far from both: IoU 0
        ],
        float,
    )
    np.testing.assert_array_equal(greedy_match_2d(pred, gt), [1, 0])
    np.testing.assert_array_equal(greedy_match_2d(pred[2:], gt), [-1, -1])
    # invisible joints are ignored: the wrong joint of GT 0 does not matter
    vis = np.array([[True, False], [True, True]])
    gt_bad = gt.copy()
    gt_bad[0, 1] = [500, 500]
    assert greedy_match_2d(pred[:2], gt_bad, vis, iou_thresh=0.0)[0] == 1


def test_detection_scores():
    s = detection_scores(num_gt=4, num_pred=2, num_matched=2)
    assert s["precision"] == 1.0 and s["recall"] == 0.5 and abs(s["f1"] - 2 / 3) < 1e-12
    assert detection_scores(0, 0, 0)["f1"] == 0.0
