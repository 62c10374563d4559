"""The TensorRT parser-rule check catches what TensorRT would reject (hand-built ONNX graphs)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mahmr_ros.runtime.trt_ops import TRT_SUPPORTED_OPS, check_tensorrt_compatible


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _vi(name, elem=TensorProto.FLOAT, shape=(1, 4)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def test_a_supported_graph_passes_and_ops_are_counted():
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sigmoid", ["y"], ["z"])],
        [_vi("x")],
        [_vi("z")],
    )
    report = check_tensorrt_compatible(model, {})
    assert report.ok and report.ops == {"Relu": 1, "Sigmoid": 1}


def test_unsupported_ops_are_named():
    model = _model(
        [helper.make_node("NonZero", ["x"], ["y"], name="nz")],
        [_vi("x")],
        [_vi("y", TensorProto.INT64, (2, "K"))],
    )
    problems = check_tensorrt_compatible(model).problems
    assert any("'nz'" in p and "NonZero" in p for p in problems)
    assert "NonZero" not in TRT_SUPPORTED_OPS and "LayerNormalization" in TRT_SUPPORTED_OPS


def test_conv_weights_must_be_constant():
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    conv_const = helper.make_node("Conv", ["x", "w"], ["y"], name="c1")
    conv_input = helper.make_node("Conv", ["x", "w_in"], ["y2"], name="c2")
    x = _vi("x", shape=(1, 1, 8, 8))
    model = _model(
        [conv_const, conv_input],
        [x, _vi("w_in", shape=(2, 1, 3, 3))],
        [_vi("y", shape=(1, 2, 6, 6)), _vi("y2", shape=(1, 2, 6, 6))],
        [w],
    )
    problems = check_tensorrt_compatible(model).problems
    assert len(problems) == 1 and "'c2'" in problems[0] and "weights W" in problems[0]


def test_float64_tensors_are_rejected():
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [_vi("x", TensorProto.DOUBLE)],
        [_vi("y", TensorProto.DOUBLE)],
    )
    assert any("float64" in p for p in check_tensorrt_compatible(model).problems)


def test_dynamic_axes_need_a_profile():
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [_vi("x", shape=(1, "N"))],
        [_vi("y", shape=(1, "N"))],
    )
    assert check_tensorrt_compatible(model, {"x": {1: "N"}}).ok
    problems = check_tensorrt_compatible(model, {}).problems
    assert any("'x' axis 1 (N)" in p and "optimization profile" in p for p in problems)


def test_cubic_resize_is_rejected_and_subgraphs_are_searched():
    resize = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="rs", mode="cubic")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    branch = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["b"], name="inner")],
        "then",
        [],
        [_vi("b", TensorProto.INT64, (4, "K"))],
    )
    cond = helper.make_node("If", ["c"], ["z"], then_branch=branch, else_branch=branch, name="if")
    model = _model(
        [resize, cond],
        [_vi("x", shape=(1, 1, 2, 2)), _vi("c", TensorProto.BOOL, ())],
        [_vi("y", shape=(1, 1, 4, 4)), _vi("z", TensorProto.INT64, (4, "K"))],
        [scales],
    )
    problems = check_tensorrt_compatible(model).problems
    assert any("Resize mode cubic" in p for p in problems)
    assert any("'inner'" in p for p in problems)
    onnx.checker.check_model(
        model
    )  # the graphs themselves are valid ONNX: only TensorRT would refuse them
