"""Pipeline + DTO on synthetic crowds (mahmr_ros.testing.crowd): each mode moves people toward the
truth."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mahmr_ros.pipeline import Pipeline, register_estimator
from mahmr_ros.testing.crowd import make_crowd
from mahmr_ros.types import Estimation, MeshTopology

SCENE = {}


class CrowdEstimator:
    """Test double: returns the current scene's network-like (scale-ambiguous) estimates."""

    body_model = "smpl"

    def topology(self):
        return MeshTopology("smpl", SCENE["scene"].faces, ["pelvis"])

    def estimate(self, image_bgr, K):
        scene = SCENE["scene"]
        humans = [h.replace(track_id="") for h in scene.estimates]
        return Estimation(humans, scene.K, False, {})


register_estimator("test_crowd", CrowdEstimator)


@pytest.fixture(scope="module")
def scene():
    SCENE["scene"] = make_crowd(4, seed=5, num_vertices=1500)
    return SCENE["scene"]


def _depth_errors(humans, scene):
    # Match by pelvis pixel (the scale ambiguity keeps every person on their true ray).
    truth = scene.true_depths()
    est = np.array([h.pelvis[2] for h in humans])
    order = [int(np.argmin([abs(np.arctan2(h.pelvis[0], h.pelvis[2]) - np.arctan2(t.pelvis[0],
                                                                                  t.pelvis[2]))
                            for t in scene.truth])) for h in humans]  # fmt: skip
    return np.abs(est - truth[order])


def _image(scene):
    return np.zeros((*scene.image_hw, 3), np.uint8)


def test_rgbd_mode_recovers_metric_depth(scene):
    before = _depth_errors(scene.estimates, scene)
    pipe = Pipeline.from_config({"estimator": "test_crowd", "dto": {"mode": "rgbd"}})
    result = pipe.process(_image(scene), scene.K, depth=scene.depth_m)
    after = _depth_errors(result.humans, scene)
    assert "dto" in result.timings_ms and len(result.humans) == len(scene.estimates)
    assert after.mean() < 0.25 * before.mean(), (before, after)


def test_rgbd_mode_without_depth_falls_back_to_the_prior(scene):
    pipe = Pipeline.from_config({"estimator": "test_crowd", "dto": {"mode": "rgbd"}})
    result = pipe.process(_image(scene), scene.K)
    assert len(result.humans) == len(scene.estimates) and "dto" in result.timings_ms


def test_full_solver_on_metric_depth(scene):
    before = _depth_errors(scene.estimates, scene)
    pipe = Pipeline.from_config(
        {"estimator": "test_crowd", "dto": {"mode": "rgbd", "solver": "full"}}
    )
    after = _depth_errors(pipe.process(_image(scene), scene.K, depth=scene.depth_m).humans, scene)
    assert after.mean() < 0.25 * before.mean(), (before, after)


def _constant_depth_model(path, disparity: np.ndarray) -> None:
    """An ONNX 'depth network' with a fixed input size that returns a given disparity (ignores the
    pixels)."""
    h, w = disparity.shape
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["zeroed"]),
        helper.make_node("Add", ["zeroed", "disparity"], ["depth"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_disparity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, h, w])],
        [
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(disparity[None].astype(np.float32), "disparity"),
        ],  # fmt: skip
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_mono_mode_runs_the_onnx_depth_model_and_improves_depth(scene, tmp_path):
    disparity, _ = scene.relative_disparity(seed=1, noise=0.005)
    path = tmp_path / "depth.onnx"
    _constant_depth_model(path, disparity)
    before = _depth_errors(scene.estimates, scene)
    pipe = Pipeline.from_config(
        {"estimator": "test_crowd", "dto": {"mode": "mono", "depth_model": str(path)}}
    )
    result = pipe.process(_image(scene), scene.K)
    after = _depth_errors(result.humans, scene)
    assert "dto.depth_model" in result.timings_ms
    assert after.mean() < before.mean(), (before, after)


@pytest.mark.parametrize(
    "dto, match",
    [({"mode": "mono"}, "needs dto.depth_model"), ({"mode": "sonar"}, "dto.mode must be one of"),
     ({"mode": "rgbd", "solver": "magic"}, "dto.solver must be")],
)  # fmt: skip
def test_bad_dto_config_is_a_clear_error(dto, match):
    with pytest.raises(ValueError, match=match):
        Pipeline.from_config({"estimator": "test_crowd", "dto": dto})


def test_missing_depth_model_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        Pipeline.from_config(
            {
                "estimator": "test_crowd",
                "dto": {"mode": "mono", "depth_model": str(tmp_path / "nope.onnx")},
            }
        )


class FixedEstimator:
    """Test double: returns the given people (an estimator with a fixed output)."""

    body_model = "smpl"

    def __init__(self, humans, faces):
        self.humans, self.faces = humans, faces

    def topology(self):
        return MeshTopology("smpl", self.faces, ["pelvis"])

    def estimate(self, image_bgr, K):
        return Estimation(list(self.humans), SCENE["scene"].K, False, {})


def _heights_after_prior_dto(humans, scene):
    config = {"dto": {"mode": "prior_only"}, "tracking": {"enabled": False}}
    pipe = Pipeline(FixedEstimator(humans, scene.faces), config)
    return np.array([h.height_m for h in pipe.process(_image(scene), scene.K).humans])


def test_measured_heights_are_kept_by_the_prior(scene):
    """An estimator that measured a height (``height_sigma_m``, e.g. floor sizing) is trusted by
    DTO, where an estimated class (here: everyone classified adult, class 5) would pull it to the
    class prior."""
    adults = [h.replace(age_class=5) for h in scene.estimates]
    heights = np.array([h.height_m for h in adults])
    measured = [h.replace(height_sigma_m=0.02) for h in adults]
    plain = _heights_after_prior_dto(adults, scene)
    kept = _heights_after_prior_dto(measured, scene)
    assert np.abs(plain - heights).max() > 0.05  # the class prior pulls unmeasured heights
    np.testing.assert_allclose(kept, heights, atol=0.02)


def test_measured_height_in_extras_still_works_with_a_deprecation_warning(scene):
    """The old contract (``extras["height_sigma_m"]``) of plug-in estimators keeps working, and
    warns."""
    adults = [h.replace(age_class=5) for h in scene.estimates]
    legacy = [h.replace(extras={**h.extras, "height_sigma_m": 0.02}) for h in adults]
    with pytest.warns(DeprecationWarning, match="height_sigma_m"):
        old = _heights_after_prior_dto(legacy, scene)
    new = _heights_after_prior_dto([h.replace(height_sigma_m=0.02) for h in adults], scene)
    np.testing.assert_array_equal(old, new)


def test_full_solver_gets_the_estimators_topology_faces(scene):
    """The full solver's z-buffer uses the faces of ``estimator.topology()`` (estimates carry
    none)."""
    from mahmr_ros.dto import refine

    assert all("faces" not in h.extras for h in scene.estimates)
    config = {"dto": {"mode": "rgbd", "solver": "full"}, "tracking": {"enabled": False}}
    pipe = Pipeline(FixedEstimator(scene.estimates, scene.faces), config)
    got = pipe.process(_image(scene), scene.K, depth=scene.depth_m).humans
    want = refine(scene.estimates, scene.K, scene.depth_m, faces=scene.faces)
    np.testing.assert_allclose([h.pelvis for h in got], [h.pelvis for h in want], rtol=1e-6)


class ShapeEstimator(FixedEstimator):
    """Test double with the optional ``shape_model()`` method."""

    def shape_model(self):
        return SCENE["scene"].shape_model


def test_dto_shape_space_comes_from_the_estimators_shape_model_method(scene):
    children = [h.replace(age_class=1) for h in scene.estimates]  # the kid prior shrinks them
    config = {"dto": {"mode": "prior_only"}, "tracking": {"enabled": False}}
    with_shape = Pipeline(ShapeEstimator(children, scene.faces), config)
    assert with_shape._dto.shape_model is scene.shape_model
    out = with_shape.process(_image(scene), scene.K).humans
    assert any(not np.allclose(o.betas, h.betas) for o, h in zip(out, children))  # shape updated
    without = Pipeline(FixedEstimator(children, scene.faces), config)
    assert without._dto.shape_model is None
    out = without.process(_image(scene), scene.K).humans
    assert all(np.array_equal(o.betas, h.betas) for o, h in zip(out, children))  # only scaled


class FloorCrowdEstimator(CrowdEstimator):
    """Test double: the crowd's estimates and the floor they stand on (as the offline estimator
    reports)."""

    def estimate(self, image_bgr, K):
        from mahmr_ros.types import FloorEstimate

        est = super().estimate(image_bgr, K)
        est.floor = FloorEstimate(
            1.4, 0.0, camera_height_sigma_m=0.02, people=len(est.humans), frames=1
        )
        return est


register_estimator("test_floor_crowd", FloorCrowdEstimator)


def test_estimator_floor_reaches_the_result_and_dto_lite(scene):
    """Estimation.floor is passed on in FrameResult.floor and used by DTO-Lite as a cue (prior_only
    mode)."""
    config = {"dto": {"mode": "prior_only"}, "tracking": {"enabled": False}}
    plain = Pipeline.from_config({**config, "estimator": "test_crowd"}).process(
        _image(scene), scene.K
    )
    result = Pipeline.from_config({**config, "estimator": "test_floor_crowd"}).process(
        _image(scene), scene.K
    )
    assert plain.floor is None
    assert result.floor is not None and result.floor.camera_height_m == 1.4
    status = [h.extras["dto"]["status"] for h in result.humans]
    assert "floor" in status, status
    floored = [i for i, s in enumerate(status) if s == "floor"]
    assert (
        _depth_errors([result.humans[i] for i in floored], scene).max()
        < _depth_errors([plain.humans[i] for i in floored], scene).max()
    )
