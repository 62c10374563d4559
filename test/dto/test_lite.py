"""DTO-Lite: soft objective limits, cues, metric / relative / prior modes, per-track smoothing,
guards."""

import numpy as np
import pytest

from mahmr_ros.dto import DTOLite, LiteConfig
from mahmr_ros.dto.lite import lite_cues, splat_zbuffer
from mahmr_ros.dto.solve import soft_scale, soft_weights, solve_group
from mahmr_ros.testing import make_crowd

HW = (240, 320)


@pytest.fixture(scope="module")
def scene():
    return make_crowd(6, seed=21, image_hw=HW)


def depth_err(humans, scene):
    z = np.array([h.pelvis[2] for h in humans])
    return np.abs(z - scene.true_depths()) / scene.true_depths()


def test_infinite_lambda_is_exactly_dto():
    """Spec §12 (iv): with lambda -> inf the soft objective's solver equals the reference
    solver."""
    rng = np.random.default_rng(3)
    n = 6
    d, z = rng.uniform(1, 6, n), rng.uniform(2, 9, n)
    h, mu, sigma = rng.uniform(1.5, 1.9, n), rng.uniform(1.6, 1.8, n), rng.uniform(0.07, 0.12, n)
    zeros = np.zeros(n)
    w = 1 / sigma**2
    ref = solve_group(d, z, h, mu, sigma, zeros, zeros, zeros, alpha_min_default=-1e9)
    lim = solve_group(d, z, h, mu, sigma, zeros, zeros, zeros, alpha_min_default=-1e9,
                      weights=soft_weights(w, h, z, np.full(n, np.inf)))  # fmt: skip
    np.testing.assert_allclose(lim[:2], ref[:2], rtol=1e-12)
    big = solve_group(d, z, h, mu, sigma, zeros, zeros, zeros, alpha_min_default=-1e9,
                      weights=soft_weights(w, h, z, np.full(n, 1e12)))  # fmt: skip
    np.testing.assert_allclose(big[:2], ref[:2], rtol=1e-6)
    s, var = soft_scale(w, h, mu, z, ref[0] * d + ref[1], np.full(n, np.inf))
    np.testing.assert_allclose(s, (ref[0] * d + ref[1]) / z)
    np.testing.assert_array_equal(var, 0.0)
    # lambda = 0: the scale is the height prior's mu / h.
    s0, _ = soft_scale(w, h, mu, z, d, np.full(n, 1e-30))
    np.testing.assert_allclose(s0, mu / h, rtol=1e-9)


def test_numpy_and_torch_splat_agree(scene):
    pts = np.concatenate([h.vertices[::7] for h in scene.estimates]).astype(np.float32)
    a, lin_a, hw = splat_zbuffer(pts, scene.K, HW, 0.25, "cpu")
    b, lin_b, _ = splat_zbuffer(
        pts, scene.K, HW, 0.25, device="cpu:0"
    )  # the torch rasterizer path
    assert hw == (60, 80)
    np.testing.assert_array_equal(lin_a, lin_b)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert np.isfinite(a).sum() > 100


def test_cues_match_the_scale_error(scene):
    verts = np.stack([h.vertices[::7] for h in scene.estimates]).astype(np.float32)
    cues = lite_cues(verts, scene.K, scene.depth_m, "metric", scene.masks, LiteConfig(erode_px=1))
    ok = np.array([r is None for r in cues.removed])
    assert ok.sum() >= 4
    np.testing.assert_allclose((cues.d / cues.z)[ok], 1 / scene.errors[ok], rtol=0.03)
    # Same cue from a 16UC1 image (mm) and, as 1/disparity, from a disparity map.
    mm = np.round(scene.depth_m * 1000).astype(np.uint16)
    cues16 = lite_cues(verts, scene.K, mm, "metric", scene.masks, LiteConfig(erode_px=1))
    np.testing.assert_allclose(cues16.d[ok], cues.d[ok], rtol=1e-3)
    disp = 1.0 / scene.depth_m
    disp[0, :] = 0.0  # zeros are replaced by the smallest positive disparity, never inf
    cues_d = lite_cues(verts, scene.K, disp, "disparity", scene.masks, LiteConfig(erode_px=1))
    np.testing.assert_allclose(cues_d.d[ok], cues.d[ok], rtol=1e-4)


def test_metric_mode_recovers_positions(scene):
    lite = DTOLite()
    out = lite(scene.estimates, scene.K, scene.depth_m, masks=scene.masks, priors=scene.classes)
    refined = np.array([o.extras["dto"]["status"] == "refined" for o in out])
    assert refined.sum() >= 4
    assert (
        np.median(depth_err(out, scene)[refined])
        < 0.03
        < np.median(depth_err(scene.estimates, scene))
    )
    assert [o.track_id for o in out] == [h.track_id for h in scene.estimates]
    assert all(o.depth_sigma_m > 0 for o, r in zip(out, refined) if r)
    assert set(lite.last_timings_ms) == {"cues", "solve", "apply"}


def test_relative_mode_temporal_prior_handles_single_people(scene):
    disp, _ = scene.relative_disparity(seed=5)
    lite = DTOLite()
    lone = DTOLite()
    first = lone(scene.estimates[:1], scene.K, disp, "disparity")
    assert first[0].extras["dto"]["status"] == "unanchored" and first[0].scale == 1.0
    for _ in range(3):
        out = lite(
            scene.estimates, scene.K, disp, "disparity", masks=scene.masks, priors=scene.classes
        )
    assert np.median(depth_err(out, scene)) < 0.6 * np.median(depth_err(scene.estimates, scene))
    assert lite.ab is not None and lite.ab[0] > 0
    # A frame with only one person is solved through the (alpha, beta) filter of earlier frames.
    single = lite(
        scene.estimates[:1],
        scene.K,
        disp,
        "disparity",
        masks=scene.masks[:1],
        priors=scene.classes[:1],
    )
    assert single[0].extras["dto"]["status"] == "refined"
    assert single[0].pelvis[2] == pytest.approx(out[0].pelvis[2], rel=0.05)


def test_track_smoothing_and_occlusion(scene):
    rng = np.random.default_rng(0)
    lite = DTOLite()
    truth = scene.truth[0]
    raw, filtered = [], []
    for _ in range(
        15
    ):  # per-frame noisy estimates of person 0 (different scale errors each frame)
        e = rng.uniform(0.8, 1.2)
        est = scene.estimates[0].replace(vertices=e * truth.vertices, joints=e * truth.joints,
                                         pelvis=e * truth.pelvis,
                                         height_m=e * truth.height_m)  # fmt: skip
        depth = scene.depth_m * rng.normal(
            1.0, 0.03
        )  # per-frame sensor bias: the filter averages it
        (o,) = lite([est], scene.K, depth, masks=scene.masks[:1])
        raw.append(o.extras["dto"]["raw_scale"] * est.height_m)
        filtered.append(o.height_m)
    assert np.std(filtered[5:]) < 0.5 * np.std(raw[5:])
    assert lite.tracks["p0"].height_m == pytest.approx(truth.height_m, rel=0.04)
    # Occluded this frame (empty mask): the track keeps its metric height.
    (occl,) = lite(
        [scene.estimates[0]], scene.K, scene.depth_m, masks=np.zeros_like(scene.masks[:1])
    )
    assert occl.extras["dto"]["status"] == "track"
    assert occl.height_m == pytest.approx(lite.tracks["p0"].height_m, rel=1e-6)
    # Tracks expire after track_ttl frames unseen; untracked people (no id) are never smoothed.
    short = DTOLite(LiteConfig(track_ttl=2))
    short([scene.estimates[0]], scene.K, scene.depth_m)
    for _ in range(3):
        short([scene.estimates[1].replace(track_id="")], scene.K, scene.depth_m)
    assert short.tracks == {}
    short.reset()
    assert short.ab is None and short.tracks == {}


def test_prior_mode_and_guards(scene):
    lite = DTOLite()
    out = lite(scene.estimates, scene.K, None, priors=scene.classes)
    assert all(o.extras["dto"]["status"] == "prior" for o in out)
    assert np.median(depth_err(out, scene)) < np.median(depth_err(scene.estimates, scene))
    assert lite([], scene.K, scene.depth_m) == []
    far = lite(scene.estimates, scene.K, scene.depth_m * 2.0)  # implied heights > 2.1 m
    assert any(o.extras["dto"]["status"] in ("outlier", "track") for o in far)
    nan_depth = np.full(HW, np.nan, np.float32)
    fresh = DTOLite()
    gone = fresh(scene.estimates, scene.K, nan_depth)
    assert all(o.extras["dto"]["status"] == "removed:samples" and o.scale == 1.0 for o in gone)


def test_bad_input_raises(scene):
    lite = DTOLite()
    with pytest.raises(ValueError, match="depth_kind"):
        lite(scene.estimates, scene.K, scene.depth_m, "depth")
    with pytest.raises(ValueError, match="K must be"):
        lite(scene.estimates, np.zeros((3, 3)), scene.depth_m)
    with pytest.raises(ValueError, match="masks must be"):
        lite(scene.estimates, scene.K, scene.depth_m, masks=scene.masks[:2])
    with pytest.raises(ValueError, match="depth must be"):
        lite(scene.estimates, scene.K, np.zeros((2, 3, 4)), "relative")
    with pytest.raises(ValueError, match="16UC1|32FC1|encoding|float"):
        lite(scene.estimates, scene.K, np.zeros(HW, np.int32))
    bad = [scene.estimates[0].replace(vertices=np.full_like(scene.estimates[0].vertices, np.nan))]
    with pytest.raises(ValueError, match="non-finite"):
        lite(bad, scene.K, scene.depth_m)
    mixed = [
        scene.estimates[0],
        scene.estimates[1].replace(vertices=scene.estimates[1].vertices[:100]),
    ]
    with pytest.raises(ValueError, match="one body model"):
        lite(mixed, scene.K, scene.depth_m)
