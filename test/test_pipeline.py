"""Pipeline: config loading, estimator registry, input validation, result fields (test-only
estimator)."""

import numpy as np
import pytest

from mahmr_ros.pipeline import (
    InputError,
    Pipeline,
    available_estimators,
    create_estimator,
    load_config,
    register_estimator,
    resolve_estimator_name,
)
from mahmr_ros.types import Estimation, HumanEstimate, MeshTopology


class KnownEstimator:
    """Test double: one person at a fixed place; records the K it was given."""

    body_model = "smpl"

    def __init__(self, depth_m: float = 3.0):
        self.depth_m = depth_m
        self.calls = []

    def topology(self):
        return MeshTopology("smpl", np.array([[0, 1, 2]]), ["pelvis"])

    def estimate(self, image_bgr, K):
        self.calls.append(K)
        h, w = image_bgr.shape[:2]
        K_used = K if K is not None else np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]])
        joints = np.zeros((45, 3), np.float32)
        joints[0] = (0, 0, self.depth_m)
        human = HumanEstimate(
            score=0.9,
            bbox_xyxy=(10, 10, 50, 90),
            rotmats=np.tile(np.eye(3), (24, 1, 1)),
            betas=np.zeros(11),
            transl=(0, 0, self.depth_m),
            vertices=np.zeros((3, 3)),
            joints=joints,
            focal=K_used[[0, 1], [0, 1]],
            principal_point=K_used[:2, 2],
            height_m=1.7,
            is_child=False,
        )
        return Estimation([human], K_used, K is None, {"net": 1.0})


@pytest.fixture
def pipeline():
    register_estimator("test_pipeline_known", KnownEstimator)
    return Pipeline.from_config(
        {"estimator": "test_pipeline_known", "dto": {"mode": "off"}, "tracking": {"seed": 0}}
    )


def test_ros_params_file_and_nested_dict_give_the_same_config():
    ros = {
        "mahmr": {
            "ros__parameters": {
                "estimator": "offline",
                "model.conf_thresh": 0.5,
                "dto.mode": "rgbd",
            }
        }
    }
    nested = {"estimator": "offline", "model": {"conf_thresh": 0.5}, "dto": {"mode": "rgbd"}}
    assert load_config(ros) == load_config(nested)
    assert load_config(ros)["model"]["config"] == "fov_kid"  # defaults kept


def test_auto_picks_the_network_only_with_weights_and_smpl():
    assert resolve_estimator_name(load_config({})) == "offline"
    assert resolve_estimator_name(load_config({"model": {"weights": "w.bin"}})) == "offline"
    assert (
        resolve_estimator_name(load_config({"model": {"weights": "w.bin", "smpl_path": "s.npz"}}))
        == "mahmr"
    )


def test_unknown_estimator_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: .*mahmr.*offline"):
        create_estimator("nope")
    assert {"mahmr", "offline"} <= set(available_estimators())


def test_process_passes_k_and_reports_it(pipeline):
    K = np.array([[600.0, 0, 330], [0, 610, 250], [0, 0, 1]])
    result = pipeline.process(np.zeros((480, 640, 3), np.uint8), K=K, stamp=123)
    assert result.K_estimated is False and result.stamp == 123 and result.image_hw == (480, 640)
    np.testing.assert_array_equal(result.K_used, K)
    np.testing.assert_array_equal(pipeline.estimator.calls[-1], K)
    assert result.humans[0].track_id[0].isalpha()
    assert set(result.timings_ms) >= {"estimator.net", "tracking", "total"}


def test_process_without_k_is_flagged_estimated(pipeline):
    result = pipeline.process(np.zeros((48, 64), np.uint8))  # mono is expanded to BGR
    assert result.K_estimated is True and pipeline.estimator.calls[-1] is None


def test_track_ids_persist_across_frames(pipeline):
    ids = {
        pipeline.process(np.zeros((48, 64, 3), np.uint8), stamp=k * 33_000_000).humans[0].track_id
        for k in range(5)
    }
    assert len(ids) == 1


@pytest.mark.parametrize(
    "image, K, match",
    [
        (np.zeros((48, 64, 3), np.uint8), np.zeros((3, 3)), "uncalibrated"),
        (np.zeros((48, 64, 3), np.uint8), np.full((3, 3), np.nan), "non-finite"),
        (np.zeros((48, 64, 4), np.uint8), None, "HxWx3"),
        (np.zeros((0, 64, 3), np.uint8), None, "too small"),
        (np.zeros((48, 64, 3), np.float32), None, "uint8"),
    ],
)
def test_bad_frames_raise_input_error(pipeline, image, K, match):
    with pytest.raises(InputError, match=match):
        pipeline.process(image, K=K)


def test_depth_size_mismatch_is_an_input_error(pipeline):
    with pytest.raises(InputError, match="register depth"):
        pipeline.process(np.zeros((48, 64, 3), np.uint8), depth=np.ones((24, 32), np.float32))
