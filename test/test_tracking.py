"""Tracker: stable ids, order independence, re-identification window, velocities."""

import numpy as np
import pytest

from mahmr_ros.tracking import Tracker, box_iou
from mahmr_ros.types import HumanEstimate


def person(x_m: float, z_m: float = 4.0, u_px: float | None = None) -> HumanEstimate:
    """A stand-in person: only pelvis and box matter to the tracker."""
    u = 320 + 500 * x_m / z_m if u_px is None else u_px
    joints = np.zeros((24, 3), np.float32)
    joints[0] = (x_m, 0.0, z_m)
    return HumanEstimate(
        score=0.9,
        bbox_xyxy=(u - 40, 100, u + 40, 400),
        rotmats=np.tile(np.eye(3), (24, 1, 1)),
        betas=np.zeros(11),
        transl=(x_m, 0, z_m),
        vertices=np.zeros((1, 3)),
        joints=joints,
        focal=(500, 500),
        principal_point=(320, 240),
        height_m=1.7,
        is_child=False,
    )


def test_box_iou_hand_values():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])


def test_ids_are_stable_for_people_walking_apart():
    tracker = Tracker(seed=0)
    first = tracker.update([person(-1.0), person(1.0)], 0.0)
    ids = [h.track_id for h in first]
    assert len(set(ids)) == 2 and all(i[0].isalpha() for i in ids)
    for k in range(1, 20):
        dx = 0.05 * k
        frame = tracker.update([person(-1.0 - dx), person(1.0 + dx)], k / 30)
        assert [h.track_id for h in frame] == ids


def test_swapped_detection_order_does_not_swap_ids():
    tracker = Tracker(seed=0)
    a, b = tracker.update([person(-1.0), person(1.0)], 0.0)
    swapped = tracker.update([person(1.02), person(-1.02)], 1 / 30)
    assert swapped[0].track_id == b.track_id and swapped[1].track_id == a.track_id


def test_reid_window_is_honoured():
    tracker = Tracker(reid_window_s=0.5, seed=0)
    (first,) = tracker.update([person(0.0)], 0.0)
    tracker.update([], 0.2)
    (back,) = tracker.update([person(0.0)], 0.4)  # missed for 0.4 s < window: same id
    assert back.track_id == first.track_id
    tracker.update([], 0.6)
    (late,) = tracker.update([person(0.0)], 1.2)  # unseen for 0.8 s > window: new id, never reused
    assert late.track_id != first.track_id


def test_velocity_from_track_is_metric_per_second():
    tracker = Tracker(velocity_smoothing=1.0, seed=0)
    tracker.update([person(0.0)], 0.0)
    (moved,) = tracker.update([person(0.1)], 0.1)  # 0.1 m in 0.1 s along x
    np.testing.assert_allclose(moved.velocity, [1.0, 0.0, 0.0], atol=1e-5)


def test_far_apart_detection_starts_a_new_track():
    tracker = Tracker(max_distance_m=0.5, seed=0)
    (a,) = tracker.update([person(-2.0)], 0.0)
    (b,) = tracker.update([person(2.0)], 1 / 30)
    assert a.track_id != b.track_id


def test_bad_parameters_are_rejected_with_the_value():
    with pytest.raises(ValueError, match="max_distance_m=0"):
        Tracker(max_distance_m=0)
