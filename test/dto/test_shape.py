"""ShapeModel: T-pose height, rest pelvis, and the beta update (secant step, kid blend)."""

import numpy as np
import pytest

from mahmr_ros.dto.shape import KID_INDEX, ShapeModel
from mahmr_ros.testing import synthetic_shape_model


@pytest.fixture(scope="module")
def model():
    return synthetic_shape_model()


def test_height_and_pelvis_follow_the_shape_space(model):
    assert model.num_betas == 11
    assert model.height(np.zeros(11)) == pytest.approx(1.70, abs=0.02)
    assert model.height(np.zeros(10)) == model.height(
        np.zeros(11)
    )  # 10-dim betas are padded with the kid 0
    b = np.zeros(11)
    b[0] = 1.0
    assert model.height(b) - model.height(np.zeros(11)) == pytest.approx(0.06, abs=0.005)
    kid = np.zeros(11)
    kid[KID_INDEX] = 1.0
    assert model.height(kid) == pytest.approx(1.10, abs=0.03)
    # J0 is linear in beta.
    b1, b2 = np.random.default_rng(0).normal(size=(2, 11))
    lhs = model.rest_pelvis(0.3 * b1 + 0.7 * b2)
    np.testing.assert_allclose(
        lhs, 0.3 * model.rest_pelvis(b1) + 0.7 * model.rest_pelvis(b2), atol=1e-9
    )


@pytest.mark.parametrize("scale", [0.9, 0.95, 1.1, 1.25])  # new heights stay >= 1.45 m
def test_adult_update_changes_beta0_and_hits_the_height(model, scale):
    b = np.zeros(11)
    new, k = model.update_betas(b, scale, age_class=5)
    assert k == 0
    assert model.height(new) == pytest.approx(scale * model.height(b), abs=1e-3)
    assert np.all(new[1:] == 0)


def test_official_single_step_is_approximate_and_kid_blend_for_children(model):
    b = np.zeros(11)
    one, _ = model.update_betas(b, 0.9, age_class=5, steps=1)
    assert model.height(one) == pytest.approx(0.9 * model.height(b), abs=0.03)
    child, k = model.update_betas(b, 0.9, age_class=1)  # a child that shrinks: the kid blend moves
    assert k == KID_INDEX and child[KID_INDEX] > 0
    short, k = model.update_betas(b, 0.8, age_class=None)  # 1.36 m < 1.45 m: kid blend as well
    assert k == KID_INDEX
    assert model.height(short) == pytest.approx(0.8 * model.height(b), abs=2e-3)
    grow, k = model.update_betas(b, 1.1, age_class=2)  # a growing teen uses beta_0
    assert k == 0


def test_bad_arrays_raise():
    with pytest.raises(ValueError, match="lack"):
        ShapeModel.from_arrays({"v_template": np.zeros((5, 3))})
    with pytest.raises(ValueError, match="shapedirs"):
        ShapeModel(np.zeros((5, 3)), np.zeros((4, 3, 10)), np.zeros(5))
    with pytest.raises(ValueError, match="pelvis regressor"):
        ShapeModel(np.zeros((5, 3)), np.zeros((5, 3, 10)), np.zeros(4))
    m = ShapeModel(
        np.random.default_rng(0).normal(size=(5, 3)), np.zeros((5, 3, 10)), np.full(5, 0.2)
    )
    with pytest.raises(ValueError, match="extra ones are non-zero"):
        m.height(np.ones(11))


def test_matches_smpl_body_heights_and_pelvis(tmp_path):
    """The shape model built from an SMPLBody agrees with the body's own height and rest pelvis
    (smplx)."""
    from mahmr_ros.body import SMPLBody
    from mahmr_ros.body.synthetic import make_synthetic_smpl

    path = make_synthetic_smpl(tmp_path / "smpl.npz", kid_template_path=tmp_path / "kid.npy")
    body = SMPLBody(path, kid_template_path=tmp_path / "kid.npy")
    model = ShapeModel.from_smpl_body(body)
    betas = np.random.default_rng(1).normal(0, 0.5, 11)
    assert model.height(betas) == pytest.approx(
        float(np.asarray(body.height(betas[None])).reshape(-1)[0]), abs=1e-5
    )
    shaped = np.asarray(body.shaped_vertices(betas[None])).reshape(-1, 3)
    np.testing.assert_allclose(model.shaped(betas), shaped, atol=1e-5)
