"""Metric placement: a known translation is recovered from projected points and K."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.geometry import project
from mahmr_ros.offline.place import assumed_K, solve_translation


def test_assumed_K_matches_the_fov():
    K = assumed_K(640, 480, hfov_deg=90.0)
    assert K[0, 0] == pytest.approx(320.0)
    assert K[1, 1] == K[0, 0]
    assert (K[0, 2], K[1, 2]) == (319.5, 239.5)
    with pytest.raises(ValueError, match="hfov_deg"):
        assumed_K(640, 480, hfov_deg=0.5)


@pytest.mark.parametrize("depth", [1.5, 4.0, 9.0])
def test_solve_translation_recovers_a_known_depth(depth):
    rng = np.random.default_rng(1)
    body = rng.normal(0.0, 0.4, (17, 3)) * [
        0.5,
        1.0,
        0.2,
    ]  # a person-sized rigid point cloud, metres
    t_true = np.array([0.7, 0.3, depth])
    K = assumed_K(640, 480, 60.0)
    uv = project(body + t_true, K)
    t = solve_translation(body, uv, K)
    np.testing.assert_allclose(t, t_true, atol=1e-6)


def test_solve_translation_with_noise_and_ignored_points():
    rng = np.random.default_rng(2)
    body = rng.normal(0.0, 0.4, (23, 3))
    t_true = np.array([-1.0, 0.2, 5.0])
    K = np.array([[800.0, 0, 330], [0, 790.0, 250], [0, 0, 1]])
    uv = project(body + t_true, K) + rng.normal(0, 1.0, (23, 2))
    weights = np.ones(23)
    uv[3] = [5000.0, -4000.0]  # an outlier, switched off by its weight
    weights[3] = 0.0
    uv[4] = np.nan  # a missing landmark
    t = solve_translation(body, uv, K, weights=weights)
    assert abs(t[2] - t_true[2]) / t_true[2] < 0.02
    np.testing.assert_allclose(t[:2], t_true[:2], atol=0.05)


def test_solve_translation_rejects_bad_input():
    K = assumed_K(640, 480)
    with pytest.raises(ValueError, match="2 points but 3 pixels"):
        solve_translation(np.zeros((2, 3)), np.zeros((3, 2)), K)
    with pytest.raises(ValueError, match=">= 2 weighted points"):
        solve_translation(np.ones((3, 3)), np.ones((3, 2)), K, weights=[1, 0, 0])


def test_solve_translation_holds_a_contact_point_on_the_floor():
    """Keypoints of a body 10 % too small for its true place: alone they put it 10 % too close
    (feet above the floor); with the floor contact its sole lands on the floor (camera 1.2 m above
    it, pitched 10 deg)."""
    rng = np.random.default_rng(3)
    body = rng.normal(0.0, 0.3, (17, 3)) * [0.4, 1.0, 0.2]
    body[:, 1] -= body[:, 1].max() - 0.9  # lowest point (largest y: down) 0.9 m below the origin
    sole = body[np.argmax(body[:, 1])]
    pitch = np.radians(10.0)
    up = np.array([0.0, -np.cos(pitch), -np.sin(pitch)])
    K = assumed_K(640, 480, 60.0)
    t_true = np.array([0.3, 0.0, 5.0])
    t_true += up * (-1.2 - up @ (sole + t_true))  # the true body's sole on the floor
    uv = project(body + t_true, K)
    small = 0.9 * body  # the fitted size is off: the projection alone puts it at 90 % of the depth
    t_free = solve_translation(small, uv, K)
    assert t_free[2] == pytest.approx(0.9 * t_true[2], rel=0.02)
    assert up @ (0.9 * sole + t_free) + 1.2 > 0.05  # floating above the floor
    t = solve_translation(small, uv, K, floor=(up, 1.2, 0.9 * sole, 17.0))
    assert abs(up @ (0.9 * sole + t) + 1.2) < 0.02  # on the floor
    assert (
        np.linalg.norm(project(small + t, K) - uv, axis=1).mean() < 6.0
    )  # still on the keypoints (px)
