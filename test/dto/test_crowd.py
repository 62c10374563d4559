"""The synthetic crowd toolkit: determinism, ground truth consistency, network-like estimates."""

import numpy as np
import pytest

from mahmr_ros.dto.priors import HEIGHT_PRIORS_M
from mahmr_ros.testing import make_crowd


@pytest.fixture(scope="module")
def scene():
    return make_crowd(6, seed=11, image_hw=(120, 160))


def test_deterministic_with_seed(scene):
    again = make_crowd(6, seed=11, image_hw=(120, 160))
    np.testing.assert_array_equal(again.depth_m, scene.depth_m)
    np.testing.assert_array_equal(again.errors, scene.errors)
    other = make_crowd(6, seed=12, image_hw=(120, 160))
    assert not np.array_equal(other.errors, scene.errors)


def test_truth_is_metric_and_rendered(scene):
    z = scene.true_depths()
    assert np.all((z >= 1.0) & (z <= 15.0))
    for t, cls in zip(scene.truth, scene.classes):
        mu, sigma = HEIGHT_PRIORS_M[cls]
        assert abs(t.height_m - mu) <= 2 * sigma + 1e-3
        assert t.age_class == cls and t.is_child == (cls < 3)
        # Soles on the floor 1.4 m below the camera (y down).
        assert np.max(t.vertices[:, 1]) == pytest.approx(1.4, abs=1e-4)
    assert scene.masks.shape == (6, 120, 160) and not np.any(scene.masks.sum(0) > 1)
    owned = scene.masks.any(0)
    assert np.all(scene.depth_m[~owned] == 30.0) and np.all(scene.depth_m[owned] < 16.0)


def test_estimates_are_scaled_truth(scene):
    e = np.abs(scene.errors - 1)
    assert np.all((e >= 0.05) & (e <= 0.30))
    for t, est, f in zip(scene.truth, scene.estimates, scene.errors):
        np.testing.assert_allclose(est.vertices, f * t.vertices, rtol=1e-5)
        assert est.height_m == pytest.approx(f * t.height_m, abs=1e-3)
        m = scene.shape_model
        np.testing.assert_allclose(m.rest_pelvis(est.betas) + est.transl, est.pelvis, atol=1e-4)
        assert (
            est.age_class is None and "faces" not in est.extras
        )  # faces: scene.faces, passed explicitly
    assert [h.track_id for h in scene.estimates] == [f"p{i}" for i in range(6)]


def test_relative_disparity_is_affine_in_inverse_depth(scene):
    disp, (a, b) = scene.relative_disparity(seed=3, noise=0.0)
    np.testing.assert_allclose(disp, a / scene.depth_m + b, rtol=1e-5)


def test_empty_scene_and_bad_count():
    empty = make_crowd(0, image_hw=(40, 60))
    assert empty.masks.shape == (0, 40, 60) and np.all(empty.depth_m == 30.0)
    with pytest.raises(ValueError, match="num_people"):
        make_crowd(-1)


def test_sensor_depth_has_noise_holes_shadows_and_flying_pixels(scene):
    mm = scene.sensor_depth_mm(seed=1)
    assert mm.dtype == np.uint16 and mm.shape == scene.depth_m.shape
    person = scene.masks.any(0)
    assert np.all(mm[~person & (scene.depth_m > 10)] == 0)  # the 30 m wall is out of range
    valid = (mm > 0) & person
    err = mm[valid] / 1000.0 - scene.depth_m[valid]
    assert 0.002 < np.median(np.abs(err)) < 0.1  # noisy, but mostly close
    assert np.mean(np.abs(err) > 0.5) > 0  # flying pixels at silhouettes
    assert 0.01 < np.mean(mm[person] == 0) < 0.2  # holes (+ shadows cast by nearer people)
    clean = scene.sensor_depth_mm(
        sigma0_m=0, k_per_m=0, hole_fraction=0, shadow_px=0, flying_pixels=False
    )
    near = person & (scene.depth_m < 10)  # beyond the 10 m range: no reading
    np.testing.assert_allclose(clean[near] / 1000.0, scene.depth_m[near], atol=6e-4)
    assert np.all(clean[person & (scene.depth_m > 10)] == 0)
