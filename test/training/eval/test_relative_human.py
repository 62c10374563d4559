"""PCRD, the missed-person penalty, age groups and mPCKh on a hand-worked image."""

from __future__ import annotations

import numpy as np
import pytest

from training.eval.relative_human import RelativeHumanEval, depth_relation


def person(x0: float) -> np.ndarray:
    """(14, 3) CrowdPose-like joints spread over a 20x40 px box at x0, all visible."""
    ys = np.linspace(0, 40, 14)
    xs = x0 + np.linspace(0, 20, 14)
    return np.stack([xs, ys, np.ones(14)], 1)


def test_depth_relation_codes():
    np.testing.assert_array_equal(depth_relation(np.array([0.0, 0.19, -0.5, 0.5, 0.2])), [0, 0, -1, 1, 9])


def test_pcrd_with_miss_penalty_and_age_groups():
    gt = np.stack([person(0), person(100), person(200), person(300)])
    depth_id = np.array([0, 0, 1, 2])
    age = np.array([0, 2, 0, 3])  # adult, kid, adult, baby (missed)
    pred_kp = gt[:3, :, :2] + 1.0  # the baby (GT 3) is missed
    pred_z = np.array([3.0, 3.1, 2.0])  # 0~1 eq (correct); 2 predicted nearer than 0 and 1 (wrong)
    ev = RelativeHumanEval()
    match = ev.add(pred_kp, pred_z, gt, depth_id, age)
    np.testing.assert_array_equal(match, [0, 1, 2, -1])
    r = ev.result()
    # ordered pairs among 3 matched: 6; correct: (0,1),(1,0) -> 2; penalty 0.3 for the missed baby
    assert r["PCRD_0.2"] == pytest.approx(2 / (6 + 0.3))
    assert r["PCRD_age"]["kid"] == pytest.approx(1 / 2)  # kid anchors: (1,0) ok, (1,2) wrong
    assert r["PCRD_age"]["adult"] == pytest.approx(1 / 4)  # (0,1) ok; (0,2),(2,0),(2,1) wrong
    assert r["PCRD_age"]["baby"] == pytest.approx(0.0)  # only the penalty
    assert r["PCRD_age"]["teen"] is None
    assert r["PCRD_relation"] == pytest.approx({"eq": 1.0, "closer": 0.0, "farther": 0.0})
    assert r["recall"] == pytest.approx(0.75) and r["precision"] == pytest.approx(1.0)
    assert r["mPCKh"] == pytest.approx(1.0)  # 1.4 px error << 0.143 x 44.7 px


def test_mpckh_counts_far_joints_as_wrong():
    gt = person(0)[None]
    pred = gt[:, :, :2].copy()
    pred[0, :7] += 10.0  # 14.1 px > 0.143 * 44.7 = 6.4 px on half the joints
    ev = RelativeHumanEval()
    ev.add(pred, np.array([3.0]), gt, np.array([0]), np.array([0]))
    assert ev.result()["mPCKh"] == pytest.approx(0.5)
    assert ev.result()["PCRD_0.2"] is None  # no pairs, no misses
