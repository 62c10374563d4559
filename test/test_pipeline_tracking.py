"""Pipeline + tracker: ids assigned before DTO stay with their person after DTO moves people in depth."""

from __future__ import annotations

import numpy as np

from mahmr_ros.pipeline import Pipeline
from mahmr_ros.types import Estimation, HumanEstimate, MeshTopology

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _person(u_px: float, z_m: float, height_m: float, age_class: int) -> HumanEstimate:
    """A person on the ray through pixel column ``u_px`` at raw depth ``z_m`` with a 80 x 300 px box."""
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
    """Test double, a static scene: a kid the network sized as an adult (1.7 m, so placed behind, at 4.5 m)
    and an adult sized too small (1.3 m, at 3.0 m), boxes overlapping (IoU 0.78). DTO's height prior (kid
    class 1.12 m, adult class) swaps their depth order: kid to ~2.97 m, adult to ~3.48 m."""

    body_model = "smpl"

    def topology(self):
        return MeshTopology("smpl", np.array([[0, 1, 2]]), ["pelvis"])

    def estimate(self, image_bgr, K_given):
        humans = [_person(300, 4.5, 1.7, age_class=1), _person(310, 3.0, 1.3, age_class=5)]
        return Estimation(humans, K, False, {})


def test_ids_survive_dto_reordering_overlapping_people_in_depth():
    pipe = Pipeline(KidBehindAdultEstimator(), {"dto": {"mode": "prior_only"}, "tracking": {"seed": 0}})
    image = np.zeros((480, 640, 3), np.uint8)
    first = pipe.process(image, K, stamp=0.0).humans
    kid, adult = first
    assert kid.pelvis[2] < adult.pelvis[2] - 0.3  # DTO did reorder them (the premise of the test)
    for k in range(1, 6):
        humans = pipe.process(image, K, stamp=k / 30).humans
        assert [h.track_id for h in humans] == [kid.track_id, adult.track_id], f"ids swapped at frame {k}"
        np.testing.assert_allclose([h.velocity for h in humans], 0.0, atol=1e-5)  # static scene
