"""The floor as a DTO cue: scale that stands a person on it, its sigma, and DTO-Lite's use of
it."""

import math

import numpy as np
import pytest

from mahmr_ros.dto import DTOLite, PersonPrior
from mahmr_ros.dto.floor import CONTACT_SIGMA, floor_scale_cue, fuse_scale
from mahmr_ros.testing import make_crowd
from mahmr_ros.types import FloorEstimate, HumanEstimate

HW = (240, 320)
CAMERA_HEIGHT_M = 1.4


@pytest.fixture(scope="module")
def scene():
    return make_crowd(
        8, seed=5, image_hw=HW, camera_height_m=CAMERA_HEIGHT_M, depth_range_m=(2.5, 14.0)
    )


def _feet_seen(scene):
    """(P,) bool: the true body's lowest point projects inside the image."""
    out = []
    for t in scene.truth:
        low = t.vertices[np.argmax(t.vertices[:, 1])]  # level camera: lowest = largest y
        u, v = (scene.K @ low)[:2] / low[2]
        out.append(0 <= u <= HW[1] - 1 and 0 <= v <= HW[0] - 1)
    return np.array(out)


def _stick(lowest_cam, height_m=0.85, K=None):
    """A minimal 'person': two vertices, the lowest at ``lowest_cam``, the head ``height_m`` above
    it (level camera)."""
    low = np.asarray(lowest_cam, np.float64)
    verts = np.stack([low, low - [0.0, height_m, 0.0]])
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]) if K is None else K
    return HumanEstimate(
        score=1.0, bbox_xyxy=np.zeros(4), rotmats=np.eye(3)[None], betas=np.zeros(1), transl=low,
        vertices=verts, joints=verts, focal=(K[0, 0], K[1, 1]), principal_point=(K[0, 2], K[1, 2]),
        height_m=height_m, is_child=False,
    )  # fmt: skip


def test_scale_and_sigma_by_hand():
    """A body whose lowest point is 0.7 m below a level camera, 2.5 m away, floor 1.4 m down: s
    = 2."""
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    h = _stick([0.0, 0.7, 2.5], K=K)
    floor = FloorEstimate(1.4, 0.0, camera_height_sigma_m=0.07, pitch_sigma_rad=math.radians(1.0))
    s, sigma = floor_scale_cue([h], floor, K, HW)
    assert s[0] == pytest.approx(2.0)
    # d log s / d pitch = (d up / d pitch . X) / (up . X) = (-cos 0 * 2.5) / (-0.7)
    rel_pitch = math.radians(1.0) * 2.5 / 0.7
    assert sigma[0] == pytest.approx(2.0 * math.sqrt(0.05**2 + rel_pitch**2 + CONTACT_SIGMA**2))
    # pitched down 10 degrees: the same floor point seen from the tilted camera gives the same
    # scale
    c, sn = math.cos(math.radians(10)), math.sin(math.radians(10))
    R = np.array([[1.0, 0, 0], [0, c, -sn], [0, sn, c]])  # level -> camera axes
    tilted = h.replace(vertices=np.array([[0.0, 0.7, 2.5], [0.0, -0.15, 2.5]]) @ R.T)
    s10, _ = floor_scale_cue([tilted], FloorEstimate(1.4, math.radians(10)), K, HW)
    assert s10[0] == pytest.approx(2.0)


def test_no_cue_without_seen_feet_or_with_an_inhuman_height():
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    floor = FloorEstimate(1.4, 0.0)
    people = [
        _stick([0.0, 0.7, 0.9], K=K),  # feet below the image (v = 353 > 239): not seen
        _stick([0.0, -0.1, 3.0], K=K),  # lowest point above the camera: not on a floor below it
        _stick([0.0, 0.3, 3.0], K=K),  # s = 4.7: a 4 m person
        _stick([0.0, 0.7, 2.5], K=K),
    ]
    s, sigma = floor_scale_cue(people, floor, K, HW)
    assert np.isnan(s[:3]).all() and np.isnan(sigma[:3]).all()
    assert s[3] == pytest.approx(2.0)
    assert [len(a) for a in floor_scale_cue([], floor, K, HW)] == [0, 0]


def test_fuse_scale_is_the_precision_weighted_mean():
    s, var = fuse_scale([1.0, 1.0], [0.04, 0.04], [1.2, np.nan], [0.1, np.nan])
    np.testing.assert_allclose(s, [(1.0 / 0.04 + 1.2 / 0.01) / (1 / 0.04 + 1 / 0.01), 1.0])
    np.testing.assert_allclose(var, [1 / (1 / 0.04 + 1 / 0.01), 0.04])


def test_crowd_cue_recovers_each_scale_error(scene):
    """Estimates off by 5-30 % along the ray: the floor gives back 1/e for everyone whose feet are
    seen."""
    floor = FloorEstimate(CAMERA_HEIGHT_M, 0.0, camera_height_sigma_m=0.02)
    s, sigma = floor_scale_cue(scene.estimates, floor, scene.K, HW)
    seen = _feet_seen(scene)
    assert seen.sum() >= 5
    np.testing.assert_allclose(s[seen], 1.0 / scene.errors[seen], rtol=2e-3)
    assert np.isnan(s[~seen]).all()
    assert np.all(sigma[seen] / s[seen] >= math.hypot(0.02 / 1.4, CONTACT_SIGMA) - 1e-12)


def test_lite_uses_the_floor_without_depth(scene):
    """The floor and the class height prior in one MAP: depths within a few % where the feet are
    seen."""
    floor = FloorEstimate(CAMERA_HEIGHT_M, 0.0, camera_height_sigma_m=0.02)
    estimates = [h.replace(age_class=c) for h, c in zip(scene.estimates, scene.classes)]
    prior_only = DTOLite()(estimates, scene.K)
    with_floor = DTOLite()(estimates, scene.K, floor=floor, image_hw=HW)
    seen = _feet_seen(scene)
    z_true = scene.true_depths()

    def err(humans):
        return np.abs(np.array([h.pelvis[2] for h in humans]) - z_true) / z_true

    assert [h.extras["dto"]["status"] for h in with_floor] == [
        "floor" if s else "prior" for s in seen
    ]
    # the adult prior mu = (h + mu_class) / 2 (spec dto §3.4) leans towards the estimate (5-30 %
    # off), and weighs ~1/4 against the floor's ~2.5 %: a few % remain
    assert np.all(err(with_floor)[seen] < 0.05), err(with_floor)
    assert np.all(err(with_floor)[seen] < err(prior_only)[seen])
    assert np.median(err(prior_only)[seen]) > 2 * np.median(err(with_floor)[seen])
    np.testing.assert_allclose(err(with_floor)[~seen], err(prior_only)[~seen])
    # without classes (no-gender prior: sigma 0.073 m about the estimate itself) the floor still
    # corrects
    no_class = DTOLite()(scene.estimates, scene.K, floor=floor, image_hw=HW)
    assert np.all(err(no_class)[seen] < err(DTOLite()(scene.estimates, scene.K))[seen])
    # a measured height (e.g. the offline estimator's floor sizing) is not combined with the floor
    # again
    measured = [PersonPrior(height_m=h.height_m, height_sigma_m=0.03) for h in scene.estimates]
    out = DTOLite()(scene.estimates, scene.K, priors=measured, floor=floor, image_hw=HW)
    assert all(h.extras["dto"]["status"] == "prior" for h in out)
    with pytest.raises(ValueError, match="image_hw"):
        DTOLite()(scene.estimates, scene.K, floor=floor)


def test_lite_depth_wins_and_the_floor_fills_in_beyond_its_range(scene):
    """RGB-D with a 10 m range: people with a reading are refined by depth alone; those beyond it
    by the floor."""
    depth = scene.sensor_depth_mm(seed=1, max_range_m=10.0)
    floor = FloorEstimate(CAMERA_HEIGHT_M, 0.0, camera_height_sigma_m=0.02)
    estimates = [h.replace(age_class=c) for h, c in zip(scene.estimates, scene.classes)]
    plain = DTOLite()(estimates, scene.K, depth, "metric", masks=scene.masks)
    both = DTOLite()(estimates, scene.K, depth, "metric", masks=scene.masks, floor=floor)
    for a, b in zip(plain, both):
        if a.extras["dto"]["status"] == "refined":
            assert b.extras["dto"]["status"] == "refined" and b.scale == a.scale
    filled = [i for i, h in enumerate(both) if h.extras["dto"]["status"] == "floor"]
    assert filled, [h.extras["dto"]["status"] for h in plain]
    for i in filled:
        assert plain[i].extras["dto"]["status"] != "refined"
        assert abs(both[i].pelvis[2] - scene.true_depths()[i]) < 0.05 * scene.true_depths()[i]
        assert abs(both[i].pelvis[2] - scene.true_depths()[i]) < abs(
            plain[i].pelvis[2] - scene.true_depths()[i]
        )
