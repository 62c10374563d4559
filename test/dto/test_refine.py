"""Whole-frame refine on synthetic crowds (metric, relative, prior-only), identity, guards and bad
input."""

import numpy as np
import pytest

from mahmr_ros.dto import DTOConfig, refine
from mahmr_ros.dto.priors import PersonPrior
from mahmr_ros.testing import make_crowd

HW = (240, 320)
RELAXED = DTOConfig(min_area_fraction=2e-4)  # far people are small at this test resolution


@pytest.fixture(scope="module")
def scenes():
    return [make_crowd(n, seed=seed, image_hw=HW) for seed, n in enumerate((4, 7, 10))]


def depth_errors(humans, scene):
    z = np.array([h.pelvis[2] for h in humans])
    return np.abs(z - scene.true_depths()) / scene.true_depths()


def ordering(humans, scene, thr=0.2):
    """Fraction of pairs ordered correctly under the PCDR 0.2 m rule (spec dto §8)."""
    zp, zt = np.array([h.pelvis[2] for h in humans]), scene.true_depths()
    ok = n = 0
    for i in range(len(zt)):
        for j in range(i + 1, len(zt)):
            dt, dp = zt[j] - zt[i], zp[j] - zp[i]
            ok += (abs(dp) < thr) if abs(dt) < thr else (dp * np.sign(dt) > thr)
            n += 1
    return ok / n


def test_metric_depth_recovers_planted_positions(scenes):
    before, after = [], []
    for s in scenes:
        out = refine(s.estimates, s.K, s.depth_m, "metric", masks=s.masks, priors=s.classes,
                     shape_model=s.shape_model, config=RELAXED, faces=s.faces)  # fmt: skip
        refined = np.array([h.extras["dto"]["status"] == "refined" for h in out])
        assert refined.mean() > 0.8
        assert set(out[0].extras["dto"]["frame"]["timings_ms"]) == {"cues", "solve", "apply"}
        before += list(depth_errors(s.estimates, s)[refined])
        after += list(depth_errors(out, s)[refined])
        for h, o in zip(s.estimates, out):  # projections never move
            assert o.track_id == h.track_id
            ray_new, ray_old = (
                o.vertices[:, :2] / o.vertices[:, 2:],
                h.vertices[:, :2] / h.vertices[:, 2:],
            )
            np.testing.assert_allclose(ray_new, ray_old, atol=1e-5)
    assert np.median(before) > 0.1
    assert np.median(after) < 0.03  # issue target: <= 3 %
    assert np.max(after) < 0.1


def test_metric_16uc1_millimetres_and_heights(scenes):
    s = scenes[1]
    mm = np.round(np.nan_to_num(s.depth_m) * 1000).astype(np.uint16)
    out = refine(
        s.estimates,
        s.K,
        mm,
        "metric",
        priors=s.classes,
        shape_model=s.shape_model,
        config=RELAXED,
        faces=s.faces,
    )
    for o, t in zip(out, s.truth):
        if o.extras["dto"]["status"] == "refined":
            assert o.height_m == pytest.approx(t.height_m, rel=0.06)
            assert (
                o.depth_sigma_m > 0 and np.isfinite(o.dto_height_z) and o.age_class == t.age_class
            )


def test_relative_depth_improves_depth_and_ordering(scenes):
    cfg = DTOConfig(min_area_fraction=2e-4, alpha_min_default=0.0, far_cue_threshold=None)
    e_before, e_after, o_before, o_after = [], [], [], []
    for k, s in enumerate(scenes):
        disp, _ = s.relative_disparity(seed=k)
        out = refine(
            s.estimates,
            s.K,
            disp,
            "disparity",
            masks=s.masks,
            priors=s.classes,
            config=cfg,
            faces=s.faces,
        )
        e_before += list(depth_errors(s.estimates, s))
        e_after += list(depth_errors(out, s))
        o_before.append(ordering(s.estimates, s))
        o_after.append(ordering(out, s))
        frame = out[0].extras["dto"]["frame"]
        assert "mean_dev" in frame and "is_optimize" in frame
    assert np.median(e_after) < 0.6 * np.median(e_before)
    assert np.mean(o_after) > np.mean(o_before)


def test_prior_only_mode_uses_the_class_prior(scenes):
    s = scenes[2]
    out = refine(s.estimates, s.K, None, priors=s.classes)
    assert np.median(depth_errors(out, s)) < np.median(depth_errors(s.estimates, s))
    assert all(o.extras["dto"]["mode"] == "prior" for o in out)
    # Without any attribute (no-gender mode, mu = own height) the prior carries no metric
    # information.
    unchanged = refine(s.estimates, s.K, None)
    assert all(o.dto_scale == pytest.approx(1.0) for o in unchanged)
    # A known metric height (registered user) wins over the class prior.
    known = {"p0": PersonPrior(height_m=s.truth[0].height_m, height_sigma_m=0.01)}
    out = refine(s.estimates, s.K, None, priors=known)
    assert out[0].pelvis[2] == pytest.approx(s.truth[0].pelvis[2], rel=1e-3)


def test_any_mesh_without_faces_and_identity(scenes):
    s = scenes[0]
    anny = [h.replace(body_model="anny", betas=np.zeros(4), extras={}) for h in s.estimates]
    out = refine(anny, s.K, s.depth_m, "metric", masks=s.masks, config=RELAXED)
    assert [o.track_id for o in out] == [h.track_id for h in anny]
    refined = [o for o in out if o.extras["dto"]["status"] == "refined"]
    assert refined and all(np.all(o.betas == 0) for o in refined)
    errs = depth_errors(out, s)[[o.extras["dto"]["status"] == "refined" for o in out]]
    assert np.median(errs) < 0.03


def test_guards_and_removal(scenes):
    s = scenes[1]
    # Default (reference) removal rule at this small resolution removes far people: unchanged, or
    # dropped.
    kept = refine(s.estimates, s.K, s.depth_m, "metric", masks=s.masks, faces=s.faces)
    removed = [o for o in kept if o.extras["dto"]["status"].startswith("removed")]
    assert removed and all(o.dto_scale == 1.0 for o in removed) and len(kept) == len(s.estimates)
    dropped = refine(
        s.estimates,
        s.K,
        s.depth_m,
        "metric",
        masks=s.masks,
        config=DTOConfig(drop_removed=True),
        faces=s.faces,
    )
    assert len(dropped) == len(kept) - len(removed)
    # A lone person with relative depth is left unchanged (spec §3.0).
    one = refine(s.estimates[:1], s.K, s.depth_m, "relative", faces=s.faces)
    assert one[0].dto_scale == 1.0 and one[0].extras["dto"]["status"] == "unchanged"
    # Everyone removed: empty deviation list -> mean_dev 0, nothing optimised.
    gone = refine(
        s.estimates, s.K, s.depth_m, "relative", masks=np.zeros_like(s.masks), faces=s.faces
    )
    assert all(o.extras["dto"]["status"] == "removed:area" for o in gone)
    frame = gone[0].extras["dto"]["frame"]
    assert frame["is_optimize"] is False and frame["mean_dev"] == 0.0
    # An estimate without a height cannot be refined: skipped cleanly, in every mode.
    no_h = [s.estimates[0].replace(height_m=0.0)] + s.estimates[1:]
    for depth in (None, s.depth_m):
        out = refine(no_h, s.K, depth, config=RELAXED, faces=s.faces)
        assert out[0].extras["dto"]["status"] == "removed:no_height" and out[0].dto_scale == 1.0
        assert out[1].extras["dto"]["status"] == "refined"
    # Depth from something behind the people (e.g. misregistered): implied heights > 2.1 m are not
    # applied.
    far = s.depth_m * 1.8
    out = refine(s.estimates, s.K, far, "metric", config=RELAXED, faces=s.faces)
    outliers = [o for o in out if o.extras["dto"]["status"] == "outlier"]
    assert len(outliers) >= 2 and all(o.dto_scale == 1.0 for o in outliers)
    assert all(o.height_m <= 2.1 for o in out if o.extras["dto"]["status"] == "refined")


def test_bad_input_raises_clear_errors(scenes):
    s = scenes[0]
    assert refine([], s.K, s.depth_m) == []
    with pytest.raises(ValueError, match="depth_kind"):
        refine(s.estimates, s.K, s.depth_m, "inverse")
    with pytest.raises(ValueError, match="K must be"):
        refine(s.estimates, np.eye(2), s.depth_m)
    # all invalid: clean skip
    blank = refine(s.estimates, s.K, np.full(HW, np.nan, np.float32), faces=s.faces)
    assert all(o.extras["dto"]["status"] == "removed:depth" and o.dto_scale == 1.0 for o in blank)
    with pytest.raises(ValueError, match="must be"):
        refine(s.estimates, s.K, np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="masks must be"):
        refine(s.estimates, s.K, s.depth_m, masks=s.masks[:1])
    with pytest.raises(ValueError, match="priors"):
        refine(s.estimates, s.K, s.depth_m, priors=[5])
    bad = [s.estimates[0].replace(vertices=np.full((10, 3), np.nan))]
    with pytest.raises(ValueError, match="finite"):
        refine(bad, s.K, s.depth_m)
    with pytest.raises(ValueError, match="encoding|uint16|float"):
        refine(s.estimates, s.K, np.ones(HW, np.int32))


def _person(tz: float, height: float = 1.715):
    from mahmr_ros.types import HumanEstimate

    p = np.array([[0.0, 0.0, tz]])
    return HumanEstimate(0.9, [0, 0, 1, 1], np.tile(np.eye(3), (24, 1, 1)), np.zeros(11), p[0], p,
                         p, (500, 500), (320, 240), height, False, age_class=5)  # fmt: skip


def test_ordering_constraint_keeps_far_group_behind_near_group():
    """Spec §3.4: the nearest far person may not be placed closer than the farthest near person."""
    from mahmr_ros.dto.cues import Cues
    from mahmr_ros.dto.refine import _solve_relative, prior_moments, resolve_priors

    humans = [
        _person(tz) for tz in (3, 4, 5, 12, 13, 14)
    ]  # 2 f / (t_z min(H, W)) < 1/4: the last 3 are far
    d = np.array([3.0, 4.0, 5.0, 6.0, 9.0, 12.0])
    # Near: Z = d; far: Z = d - 1.5 fits exactly, which would put the nearest far person at 4.5 m <
    # 5 m.
    z = np.array([3.0, 4.0, 5.0, 4.5, 7.5, 10.5])
    cues = Cues.empty(6)
    cues.d, cues.z, cues.d_bot, cues.z_bot = d, z, d.copy(), z.copy()
    cues.depth_std, cues.slope, cues.corr = np.zeros(6), np.zeros(6), np.zeros(6)
    mu, sigma, _, _ = prior_moments(humans, resolve_priors(humans, None), True)
    plan = _solve_relative(humans, cues, mu, sigma, np.diag([500.0, 500.0, 1.0]), (480, 640),
                           DTOConfig(alpha_min_default=0.0, far_cue_threshold=None))  # fmt: skip
    assert plan.group == ["near"] * 3 + ["far"] * 3
    assert plan.frame["near"]["alpha"] == pytest.approx(1.0) and plan.frame["near"][
        "beta"
    ] == pytest.approx(0.0)
    assert plan.frame["far"]["beta"] == pytest.approx(5.0 - 6.0 * plan.frame["far"]["alpha"])
    np.testing.assert_allclose(
        plan.scale[3] * z[3], 5.0
    )  # now exactly at the farthest near person
    np.testing.assert_allclose(plan.scale[:3], 1.0)
    assert plan.frame["is_optimize"]


def test_metric_dto_on_realistic_rgbd(scenes):
    """Noise, holes, IR shadows, flying pixels and mm quantisation: still within the 3 % target."""
    errors, in_range = [], []
    for k, s in enumerate(scenes):
        mm = s.sensor_depth_mm(
            seed=k
        )  # 10 m range: farther people get no reading and stay unchanged
        out = refine(
            s.estimates,
            s.K,
            mm,
            "metric",
            masks=s.masks,
            priors=s.classes,
            config=RELAXED,
            faces=s.faces,
        )
        status = [o.extras["dto"]["status"] for o in out]
        refined = np.array([st == "refined" for st in status])
        errors += list(depth_errors(out, s)[refined])
        in_range += list(refined[s.true_depths() < 9.0])
        assert all(st in ("refined", "removed:depth") for st in status)
    assert np.mean(in_range) > 0.9
    assert np.median(errors) < 0.03


def test_faces_in_extras_are_a_deprecated_fallback(scenes):
    """``extras`` is informational now; faces left there by old callers still work, with a
    warning."""
    s = scenes[0]
    legacy = [h.replace(extras={**h.extras, "faces": s.faces}) for h in s.estimates]
    with pytest.warns(DeprecationWarning, match="faces="):
        old = refine(legacy, s.K, s.depth_m, "metric", masks=s.masks, config=RELAXED)
    new = refine(
        s.estimates, s.K, s.depth_m, "metric", masks=s.masks, config=RELAXED, faces=s.faces
    )
    np.testing.assert_array_equal([h.pelvis for h in old], [h.pelvis for h in new])
