"""DTO-Lite filters against closed forms: inverse-variance fusion, random-walk prediction, the
(alpha, beta) prior."""

import numpy as np
import pytest

from mahmr_ros.dto.kalman import AffineFilter, HeightFilter


def test_height_filter_without_process_noise_is_the_inverse_variance_mean():
    filt = HeightFilter()
    h = 1.6  # the estimate's height; metric height H = s h
    heights, variances = (
        np.array([1.70, 1.74, 1.68, 1.72]),
        np.array([0.04, 0.01, 0.02, 0.05]) ** 2,
    )
    for frame, (H, var) in enumerate(zip(heights, variances), start=1):
        s, var_s = filt.update("a", frame, H / h, var / h**2, h, process_sigma_m=0.0)
    w = 1 / variances
    assert s * h == pytest.approx(np.sum(w * heights) / np.sum(w), rel=1e-12)
    assert var_s * h**2 == pytest.approx(1 / np.sum(w), rel=1e-12)
    assert filt.tracks["a"].height_m == pytest.approx(s * h)


def test_height_filter_prediction_adds_the_random_walk_per_frame_unseen():
    filt = HeightFilter()
    filt.update("a", 1, 1.0, 0.01**2, 1.7, process_sigma_m=0.005)
    s, var_s = filt.update(
        "a", 4, np.nan, 0.0, 1.7, process_sigma_m=0.005
    )  # no cue, 3 frames later
    assert s == pytest.approx(1.0)  # the track's metric height, as a scale of this estimate
    assert var_s * 1.7**2 == pytest.approx(0.01**2 * 1.7**2 + 3 * 0.005**2)


def test_height_filter_untracked_people_and_pruning():
    filt = HeightFilter()
    assert filt.update("", 1, 1.1, 0.01, 1.7, 0.005) == (
        1.1,
        0.01,
    )  # no id: passed through, not kept
    assert filt.update("b", 1, np.nan, 0.0, 1.7, 0.005) == (None, 0.0)  # no cue and no track
    filt.update("a", 1, 1.0, 0.01, 1.7, 0.005)
    filt.prune(frame=3, ttl=2)
    assert "a" in filt.tracks
    filt.prune(frame=4, ttl=2)
    assert filt.tracks == {}


def test_affine_filter_prior_is_the_predicted_precision_and_singular_updates_are_ignored():
    filt = AffineFilter()
    assert filt.prior((0.02, 0.05)) is None
    information = np.array([[400.0, 20.0], [20.0, 100.0]])
    filt.update(1.1, -0.2, information)
    mean, precision = filt.prior((0.02, 0.05))
    np.testing.assert_array_equal(mean, [1.1, -0.2])
    predicted_cov = np.linalg.inv(information) + np.diag([0.02**2, 0.05**2])
    np.testing.assert_allclose(precision, np.linalg.inv(predicted_cov))
    filt.update(5.0, 5.0, np.zeros((2, 2)))  # a degenerate solve keeps the previous map
    np.testing.assert_array_equal(filt.mean, [1.1, -0.2])
    filt.reset()
    assert filt.mean is None and filt.cov is None
