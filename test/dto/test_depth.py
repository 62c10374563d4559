"""Depth sources: metric 16UC1 / 32FC1 conversion, disparity -> cue, and an ONNX relative-depth
model."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mahmr_ros.dto.depth import RelativeDepthModel, disparity_to_cue, metric_depth_m


def test_16uc1_millimetres_and_invalid_pixels():
    raw = np.array([[0, 1500], [65535, 2000]], np.uint16)
    out = metric_depth_m(raw)
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0]) and np.isnan(
        out[1, 0]
    )  # 0 = no return, 65.535 m > max range = saturated
    np.testing.assert_allclose(out[:, 1], [1.5, 2.0])
    np.testing.assert_allclose(metric_depth_m(raw[..., None], "16UC1")[0, 1], 1.5)


def test_32fc1_metres_and_invalid_pixels():
    raw = np.array([[np.nan, 1.25], [np.inf, -1.0], [0.0, 3.0]], np.float32)
    out = metric_depth_m(raw, "32FC1")
    assert np.isnan(out[[0, 1, 1, 2], [0, 0, 1, 0]]).all()
    assert out[0, 1] == pytest.approx(1.25) and out[2, 1] == pytest.approx(3.0)
    raw_copy = raw.copy()
    metric_depth_m(raw)
    np.testing.assert_array_equal(np.isnan(raw), np.isnan(raw_copy))  # input untouched


@pytest.mark.parametrize(
    "arr, enc, msg",
    [
        (np.zeros((2, 2), np.float32), "16UC1", "uint16"),
        (np.zeros((2, 2), np.uint16), "32FC1", "float"),
        (np.zeros((2, 2), np.uint8), "8UC1", "unsupported depth encoding"),
        (np.zeros((2, 2, 3), np.float32), None, r"\(H, W\)"),
    ],
)
def test_metric_bad_input(arr, enc, msg):
    with pytest.raises(ValueError, match=msg):
        metric_depth_m(arr, enc)


def test_disparity_to_cue_replaces_zeros_with_min_positive():
    disp = np.array([[0.0, 0.5], [2.0, np.nan]], np.float32)
    cue = disparity_to_cue(disp)
    np.testing.assert_allclose(cue[0], [2.0, 2.0])
    assert cue[1, 0] == pytest.approx(0.5) and np.isnan(cue[1, 1])
    assert disparity_to_cue(disp[None]).shape == (2, 2)
    with pytest.raises(ValueError, match="no positive value"):
        disparity_to_cue(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="disparity must be"):
        disparity_to_cue(np.ones((2, 3, 4)))


def tiny_depth_model(path, fixed_hw=None):
    """An ONNX 'depth network': disparity = mean over RGB channels of the normalised input + 3, (1,
    h, w)."""
    h, w = fixed_hw if fixed_hw else ("h", "w")
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])
    y = helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, h, w])
    three = helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
        helper.make_node("Add", ["mean", "three"], ["disparity"]),
    ]
    graph = helper.make_graph(nodes, "tiny_depth", [x], [y], initializer=[three, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_relative_model_runs_and_resizes_back(tmp_path):
    model = RelativeDepthModel(
        tiny_depth_model(tmp_path / "d.onnx"), input_short_side=28, multiple=14
    )
    assert model.input_hw((60, 90)) == (28, 42)
    img = np.zeros((60, 90, 3), np.uint8)
    img[:, 45:] = 255  # right half white
    disp = model(img)
    assert disp.shape == (60, 90) and disp.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert disp[30, 5] == pytest.approx(np.mean(-mean / std) + 3, abs=1e-4)
    assert disp[30, 85] == pytest.approx(np.mean((1 - mean) / std) + 3, abs=1e-4)
    cue = disparity_to_cue(disp)
    assert cue[30, 5] > cue[30, 85]  # higher disparity = nearer = smaller cue


def test_onnx_fixed_size_and_errors(tmp_path):
    model = RelativeDepthModel(tiny_depth_model(tmp_path / "f.onnx", (14, 28)))
    assert model.input_hw((480, 640)) == (14, 28)
    assert model(np.full((48, 64, 3), 128, np.uint8)).shape == (48, 64)
    with pytest.raises(ValueError, match="uint8 BGR"):
        model(np.zeros((48, 64), np.uint8))
    with pytest.raises(FileNotFoundError, match="export your depth network"):
        RelativeDepthModel(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load ONNX model"):
        RelativeDepthModel(bad)
