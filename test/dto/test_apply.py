"""Applying a scale: 2D projections unchanged, exact pelvis placement, non-SMPL bodies, guards."""

import numpy as np
import pytest

from mahmr_ros.dto.apply import apply_scale
from mahmr_ros.testing import make_crowd


@pytest.fixture(scope="module")
def scene():
    return make_crowd(3, seed=4, image_hw=(120, 160))


def project(points, K):
    return points[:, :2] / points[:, 2:3] * np.diag(K)[:2] + K[:2, 2]


@pytest.mark.parametrize("s", [0.7, 1.3])
def test_scaling_along_the_ray_keeps_projections(scene, s):
    h = scene.estimates[0]
    out = apply_scale(h, s, shape_model=scene.shape_model, age_class=4)
    for a, b in ((h.vertices, out.vertices), (h.joints, out.joints)):
        assert np.abs(project(a, scene.K) - project(b, scene.K)).max() < 0.5  # spec §12 (iii)
    np.testing.assert_allclose(out.pelvis, s * h.pelvis, rtol=1e-6)
    assert out.dto_scale == s and out.track_id == h.track_id and out.age_class == 4


def test_shape_update_places_the_model_pelvis_exactly(scene):
    m = scene.shape_model
    h = scene.estimates[1]
    np.testing.assert_allclose(m.rest_pelvis(h.betas) + h.transl, h.pelvis, atol=1e-5)
    out = apply_scale(h, 0.85, shape_model=m, age_class=5)
    # smplx: posed pelvis = J0(beta') + t' must be exactly 0.85 x the old pelvis (spec dto §10.3
    # step 6).
    np.testing.assert_allclose(m.rest_pelvis(out.betas) + out.transl, 0.85 * h.pelvis, atol=1e-5)
    assert out.height_m == pytest.approx(0.85 * h.height_m, abs=2e-3)
    assert out.height_m == pytest.approx(m.height(out.betas), abs=1e-6)
    assert not np.allclose(out.betas, h.betas)


def test_other_bodies_are_only_scaled(scene):
    h = scene.estimates[2].replace(body_model="anny", betas=np.arange(5.0))
    out = apply_scale(h, 1.2, shape_model=scene.shape_model, report={"mode": "x"})
    np.testing.assert_array_equal(out.betas, h.betas)
    np.testing.assert_allclose(out.transl, 1.2 * h.transl, rtol=1e-6)
    assert out.height_m == pytest.approx(1.2 * h.height_m)
    assert out.extras["dto"] == {"mode": "x"}
    no_model = apply_scale(scene.estimates[2], 0.5)
    assert no_model.is_child and no_model.height_m == pytest.approx(
        0.5 * scene.estimates[2].height_m
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_raises(scene, bad):
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        apply_scale(scene.estimates[0], bad)


def test_is_child_follows_class_height_or_estimator(scene):
    h = scene.estimates[0].replace(is_child=True, height_m=1.6)
    assert apply_scale(h, 1.0).is_child  # nothing changed and no class: the estimator's flag stays
    assert not apply_scale(h, 1.1).is_child  # 1.76 m, unknown class
    assert apply_scale(h, 1.1, age_class=1).is_child  # a kid class stays a child
    assert apply_scale(h.replace(is_child=False), 0.85, age_class=5).is_child  # 1.36 m < 1.45 m
