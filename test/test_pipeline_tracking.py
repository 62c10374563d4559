"""Pipeline + tracker: ids assigned before DTO stay with their person after DTO; the frame time
(stamps)."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.pipeline import InputError, Pipeline
from mahmr_ros.types import Estimation, HumanEstimate, MeshTopology

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _person(u_px: float, z_m: float, height_m: float, age_class: int) -> HumanEstimate:
    """A person on the ray through pixel column ``u_px`` at raw depth ``z_m`` with a 80 x 300 px
    box."""
    x_m = (u_px - K[0, 2]) * z_m / K[0, 0]
    joints = np.zeros((24, 3), np.float32)
    joints[0] = (x_m, 0.0, z_m)
    return HumanEstimate(
        score=0.9,
        bbox_xyxy=(u_px - 40, 100, u_px + 40, 400),
        rotmats=np.tile(np.eye(3), (24, 1, 1)),
        betas=np.zeros(11),
        transl=(x_m, 0, z_m),
        vertices=joints[:1] + np.zeros((8, 3), np.float32),
        joints=joints,
        focal=(500, 500),
        principal_point=(320, 240),
        height_m=height_m,
        is_child=False,
        age_class=age_class,
    )


class KidBehindAdultEstimator:
    """Test double, a static scene: a kid the network sized as an adult (1.7 m, so placed behind,
    at 4.5 m) and an adult sized too small (1.3 m, at 3.0 m), boxes overlapping (IoU 0.78). DTO's
    height prior (kid class 1.12 m, adult class) swaps their depth order: kid to ~2.97 m, adult to
    ~3.48 m."""

    body_model = "smpl"

    def topology(self):
        return MeshTopology("smpl", np.array([[0, 1, 2]]), ["pelvis"])

    def estimate(self, image_bgr, K_given):
        humans = [_person(300, 4.5, 1.7, age_class=1), _person(310, 3.0, 1.3, age_class=5)]
        return Estimation(humans, K, False, {})


def test_ids_survive_dto_reordering_overlapping_people_in_depth():
    pipe = Pipeline(
        KidBehindAdultEstimator(), {"dto": {"mode": "prior_only"}, "tracking": {"seed": 0}}
    )
    image = np.zeros((480, 640, 3), np.uint8)
    first = pipe.process(image, K, stamp=0.0).humans
    kid, adult = first
    assert kid.pelvis[2] < adult.pelvis[2] - 0.3  # DTO did reorder them (the premise of the test)
    for k in range(1, 6):
        humans = pipe.process(image, K, stamp=k / 30).humans
        assert [h.track_id for h in humans] == [kid.track_id, adult.track_id], (
            f"ids swapped at frame {k}"
        )
        np.testing.assert_allclose([h.velocity for h in humans], 0.0, atol=1e-5)  # static scene


class WalkingEstimator:
    """Test double: one person walking +x, 0.1 m per frame, at 4 m."""

    body_model = "smpl"

    def __init__(self):
        self.frame = 0

    def topology(self):
        return MeshTopology("smpl", np.array([[0, 1, 2]]), ["pelvis"])

    def estimate(self, image_bgr, K_given):
        x_m = 0.1 * self.frame
        self.frame += 1
        return Estimation([_person(320 + 125 * x_m, 4.0, 1.7, age_class=5)], K, False, {})


def _velocities(stamps: list[dict]) -> tuple[list, list]:
    """x velocity (m/s) and FrameResults for frames 0.1 m apart, with ``process`` keyword
    arguments."""
    config = {"dto": {"mode": "off"}, "tracking": {"seed": 0, "velocity_smoothing": 1.0}}
    pipe = Pipeline(WalkingEstimator(), config)
    image = np.zeros((480, 640, 3), np.uint8)
    results = [pipe.process(image, K, **kw) for kw in stamps]
    return [r.humans[0].velocity[0] for r in results], results


@pytest.mark.parametrize(
    "stamps",
    [
        [{"stamp_ns": 0}, {"stamp_ns": 100_000_000}],  # explicit integer nanoseconds
        [{"stamp": 0}, {"stamp": 100_000_000}],  # legacy: an int stamp is nanoseconds
        [{"stamp": 0.0}, {"stamp": 0.1}],  # legacy: a float stamp is seconds
        [
            {"stamp": np.int64(0)},
            {"stamp": np.int64(100_000_000)},
        ],  # numpy integers are nanoseconds too
        [{"stamp": "a", "stamp_ns": 0}, {"stamp": "b", "stamp_ns": 100_000_000}],  # stamp_ns wins
    ],
)
def test_every_stamp_form_gives_the_same_time(stamps):
    velocity, results = _velocities(stamps)
    assert velocity[1] == pytest.approx(1.0, abs=1e-4)  # 0.1 m in 0.1 s
    assert [r.stamp_ns for r in results] == [0, 100_000_000]
    assert [r.stamp for r in results] == [
        kw.get("stamp") for kw in stamps
    ]  # passed through untouched


def test_numpy_integer_stamps_are_used_as_nanoseconds():
    """They were ignored (the tracker then assumed 1/30 s per frame: 3 m/s instead of 1 m/s)."""
    velocity, _ = _velocities([{"stamp": np.int64(0)}, {"stamp": np.int64(100_000_000)}])
    assert velocity[1] == pytest.approx(1.0, abs=1e-4)


def test_a_stamp_without_time_passes_through_and_the_frame_period_is_assumed():
    marker = object()
    velocity, results = _velocities([{"stamp": marker}, {"stamp": True}])
    assert results[0].stamp is marker and results[1].stamp is True
    assert [r.stamp_ns for r in results] == [None, None]
    assert velocity[1] == pytest.approx(0.1 * 30, abs=1e-3)  # tracking.frame_period_s = 1/30 s


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"stamp_ns": 0.1}, "stamp_ns must be an integer number of nanoseconds"),
        ({"stamp": 1.7e18}, "a float stamp is seconds"),  # nanoseconds passed as a float
        ({"stamp": float("nan")}, "a float stamp is seconds"),
    ],
)
def test_impossible_times_are_input_errors(kw, match):
    pipe = Pipeline(WalkingEstimator(), {"dto": {"mode": "off"}})
    with pytest.raises(InputError, match=match):
        pipe.process(np.zeros((480, 640, 3), np.uint8), K, **kw)
