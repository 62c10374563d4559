"""The TF.js -> ONNX converter, op by op against numpy references of TensorFlow's semantics, and
whole models.

Each op test builds a one-op TF.js graph in memory (placeholders + consts + the op), converts it,
runs it in onnxruntime and compares with a reference written from the TensorFlow op docs with numpy
(brute-force loops for convolution, pooling and resizing, so they share no formula with the
converter).

The whole-model test compares the four converted models with ``golden/tfjs_models.npz``: TensorFlow
2.21's own outputs on the committed public-domain image, made by ``golden/make_tfjs_golden.py``
(its docstring says how to regenerate; the reference path shares no code with the converter). It
needs the models fetched at setup (``python -m mahmr_ros.offline.human_models``) and fails with
that hint otherwise.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mahmr_ros.offline.tfjs_graph import (
    TfjsFormatError,
    TfjsGraph,
    TfjsNode,
    TfjsTensorSpec,
    load_tfjs_graph,
)
from mahmr_ros.offline.tfjs_onnx import SUPPORTED_OPS, UnsupportedOpError, convert_tfjs_to_onnx

_DT = {np.float32: "DT_FLOAT", np.int32: "DT_INT32", np.int64: "DT_INT64", np.bool_: "DT_BOOL"}
RNG = np.random.default_rng(0)


# -- attribute helpers (protobuf-JSON form, as in model.json) -------------------------------------
def T(dtype=np.float32):
    return {"type": _DT[np.dtype(dtype).type]}


def I(v):  # noqa: E743 - TF attribute kind "i"
    return {"i": str(v)}


def INTS(v):
    return {"list": {"i": [str(x) for x in v]}}


def S(v):
    return {"s": base64.b64encode(v.encode()).decode()}


def STRS(v):
    return {"list": {"s": [base64.b64encode(x.encode()).decode() for x in v]}}


def B(v):
    return {"b": v}


def F(v):
    return {"f": v}


class In:
    """A graph input (placeholder) fed at run time."""

    def __init__(self, value):
        self.value = np.asarray(value)


def run_op(
    op: str, args: list, attr: dict | None = None, n_out: int = 1, out_dtypes=None
) -> list[np.ndarray]:
    """Convert and run a graph holding the one TF op ``op``; ``args`` are :class:`In` or constant
    arrays."""
    nodes, weights, inputs, feeds = [], {}, [], {}
    refs = []
    for k, arg in enumerate(args):
        name = f"arg{k}"
        if isinstance(arg, In):
            nodes.append(TfjsNode(name, "Placeholder", [], {"dtype": T(arg.value.dtype)}))
            inputs.append(TfjsTensorSpec(name, arg.value.dtype, list(arg.value.shape)))
            feeds[name] = arg.value
        else:
            value = np.asarray(arg)
            nodes.append(TfjsNode(name, "Const", [], {"dtype": T(value.dtype)}))
            weights[name] = value
        refs.append((name, 0))
    nodes.append(TfjsNode("y", op, refs, attr or {}))
    outputs = []
    for k in range(n_out):
        dtype = np.dtype(out_dtypes[k] if out_dtypes else np.float32)
        nodes.append(TfjsNode(f"out{k}", "Identity", [("y", k)], {"T": T(dtype)}))
        outputs.append(TfjsTensorSpec(f"out{k}", dtype, []))
    model = convert_tfjs_to_onnx(
        TfjsGraph(nodes, weights, inputs, [TfjsTensorSpec(o.name, o.dtype, [-1]) for o in outputs])
    )
    # graph outputs carry no static shape here; strip the placeholder rank the test specs gave
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# -- numpy references (TensorFlow semantics) ------------------------------------------------------
def tf_same_pads(size, k, stride, dilation=1):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def ref_conv(x, w, strides, padding, depthwise=False, dilation=(1, 1)):
    """Brute-force NHWC convolution; w is HWIO, or (H, W, C, M) when depthwise."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    sh, sw = strides
    dh, dw = dilation
    if padding == "SAME":
        (pt, pb), (pl, pr) = tf_same_pads(h, kh, sh, dh), tf_same_pads(wd, kw, sw, dw)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    cout = c * w.shape[3] if depthwise else w.shape[3]
    y = np.zeros((n, oh, ow, cout), np.float64)
    for b, i, j in itertools.product(range(n), range(oh), range(ow)):
        patch = xp[
            b,
            i * sh : i * sh + (kh - 1) * dh + 1 : dh,
            j * sw : j * sw + (kw - 1) * dw + 1 : dw,
            :,
        ]
        if depthwise:  # output channel c*M + m sees input channel c only
            y[b, i, j] = np.einsum("hwc,hwcm->cm", patch, w).reshape(-1)
        else:
            y[b, i, j] = np.einsum("hwc,hwco->o", patch, w)
    return y


def ref_maxpool(x, k, s, padding):
    n, h, w, c = x.shape
    if padding == "SAME":
        (pt, pb), (pl, pr) = tf_same_pads(h, k, s), tf_same_pads(w, k, s)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    oh, ow = (xp.shape[1] - k) // s + 1, (xp.shape[2] - k) // s + 1
    return np.array(
        [
            [
                [xp[b, i * s : i * s + k, j * s : j * s + k].max(axis=(0, 1)) for j in range(ow)]
                for i in range(oh)
            ]
            for b in range(n)
        ]
    )


def ref_resize_bilinear(x, size, align_corners, half_pixel):
    """tf.raw_ops.ResizeBilinear, written out from its documented source-coordinate rules."""
    n, h, w, c = x.shape
    oh, ow = size
    y = np.zeros((n, oh, ow, c))

    def src(o, in_size, out_size):
        if align_corners and out_size > 1:
            return o * (in_size - 1) / (out_size - 1)
        scale = in_size / out_size
        return (o + 0.5) * scale - 0.5 if half_pixel else o * scale

    for i in range(oh):
        fy = src(i, h, oh)
        y0, y1 = max(math.floor(fy), 0), min(math.ceil(fy), h - 1)
        ly = fy - math.floor(fy)
        for j in range(ow):
            fx = src(j, w, ow)
            x0, x1 = max(math.floor(fx), 0), min(math.ceil(fx), w - 1)
            lx = fx - math.floor(fx)
            top = x[:, y0, x0] * (1 - lx) + x[:, y0, x1] * lx
            bottom = x[:, y1, x0] * (1 - lx) + x[:, y1, x1] * lx
            y[:, i, j] = top * (1 - ly) + bottom * ly
    return y


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- convolution, pooling, resizing ---------------------------------------------------------------
@pytest.mark.parametrize(
    "padding,stride,k",
    [("SAME", 1, 3), ("SAME", 2, 3), ("VALID", 2, 3), ("VALID", 1, 1), ("SAME", 2, 4)],
)
def test_conv2d(padding, stride, k):
    x, w = rand(1, 7, 6, 3), rand(k, k, 3, 4)
    attr = {
        "T": T(),
        "strides": INTS([1, stride, stride, 1]),
        "padding": S(padding),
        "data_format": S("NHWC"),
        "dilations": INTS([1, 1, 1, 1]),
    }
    (y,) = run_op("Conv2D", [In(x), w], attr)
    np.testing.assert_allclose(y, ref_conv(x, w, (stride, stride), padding), atol=1e-4)


def test_conv2d_dilated():
    x, w = rand(1, 9, 9, 2), rand(3, 3, 2, 3)
    attr = {
        "T": T(),
        "strides": INTS([1, 1, 1, 1]),
        "padding": S("SAME"),
        "dilations": INTS([1, 2, 2, 1]),
    }
    (y,) = run_op("Conv2D", [In(x), w], attr)
    np.testing.assert_allclose(y, ref_conv(x, w, (1, 1), "SAME", dilation=(2, 2)), atol=1e-4)


@pytest.mark.parametrize("fused", [["BiasAdd"], ["BiasAdd", "Relu"], ["BiasAdd", "Relu6"]])
def test_fused_conv2d(fused):
    x, w, b = rand(1, 6, 6, 3) * 4, rand(3, 3, 3, 5), rand(5)
    attr = {
        "T": T(),
        "strides": INTS([1, 2, 2, 1]),
        "padding": S("SAME"),
        "fused_ops": STRS(fused),
        "num_args": I(1),
        "epsilon": F(0.0),
    }
    (y,) = run_op("_FusedConv2D", [In(x), w, b], attr)
    ref = ref_conv(x, w, (2, 2), "SAME") + b
    if "Relu" in fused:
        ref = np.maximum(ref, 0)
    if "Relu6" in fused:
        ref = np.clip(ref, 0, 6)
    np.testing.assert_allclose(y, ref, atol=1e-4)


@pytest.mark.parametrize("multiplier,stride", [(1, 1), (2, 2)])
def test_depthwise_conv2d(multiplier, stride):
    x, w = rand(1, 7, 7, 3), rand(3, 3, 3, multiplier)
    attr = {"T": T(), "strides": INTS([1, stride, stride, 1]), "padding": S("SAME")}
    (y,) = run_op("DepthwiseConv2dNative", [In(x), w], attr)
    np.testing.assert_allclose(
        y, ref_conv(x, w, (stride, stride), "SAME", depthwise=True), atol=1e-4
    )


def test_fused_depthwise_conv2d_relu6():
    x, w, b = rand(1, 5, 5, 4) * 4, rand(3, 3, 4, 1), rand(4)
    attr = {
        "T": T(),
        "strides": INTS([1, 1, 1, 1]),
        "padding": S("SAME"),
        "fused_ops": STRS(["BiasAdd", "Relu6"]),
        "num_args": I(1),
    }
    (y,) = run_op("FusedDepthwiseConv2dNative", [In(x), w, b], attr)
    ref = np.clip(ref_conv(x, w, (1, 1), "SAME", depthwise=True) + b, 0, 6)
    np.testing.assert_allclose(y, ref, atol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_maxpool(padding):
    x = rand(1, 7, 8, 2)
    attr = {
        "T": T(),
        "ksize": INTS([1, 3, 3, 1]),
        "strides": INTS([1, 2, 2, 1]),
        "padding": S(padding),
    }
    (y,) = run_op("MaxPool", [In(x)], attr)
    np.testing.assert_allclose(y, ref_maxpool(x, 3, 2, padding), atol=1e-6)


@pytest.mark.parametrize(
    "size,align_corners,half_pixel",
    [
        ((8, 10), False, True),
        ((3, 2), False, True),
        ((8, 10), True, False),
        ((7, 9), False, False),
    ],
)
def test_resize_bilinear(size, align_corners, half_pixel):
    x = rand(1, 4, 5, 3)
    attr = {"T": T(), "align_corners": B(align_corners), "half_pixel_centers": B(half_pixel)}
    (y,) = run_op("ResizeBilinear", [In(x), np.array(size, np.int32)], attr)
    np.testing.assert_allclose(
        y, ref_resize_bilinear(x, size, align_corners, half_pixel), atol=1e-5
    )


# -- elementwise ----------------------------------------------------------------------------------
BINARY = {
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
    "SquaredDifference": lambda a, b: (a - b) ** 2,
    "Equal": np.equal,
    "Greater": np.greater,
    "GreaterEqual": np.greater_equal,
    "Less": np.less,
}


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_broadcasts(op):
    a, b = np.round(rand(2, 3, 4) * 2), np.round(rand(4) * 2) + 0.5  # rounded: equal pairs exist
    out = np.bool_ if op in ("Equal", "Greater", "GreaterEqual", "Less") else np.float32
    (y,) = run_op(op, [In(a), b], {"T": T()}, out_dtypes=[out])
    np.testing.assert_allclose(y, BINARY[op](a, b), rtol=1e-6)


def test_logical_and():
    a, b = RNG.random((3, 4)) > 0.5, RNG.random(4) > 0.5
    (y,) = run_op("LogicalAnd", [In(a), In(b)], {}, out_dtypes=[np.bool_])
    np.testing.assert_array_equal(y, a & b)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_floordiv_rounds_towards_minus_infinity(dtype):
    a = np.array([7, -7, 7, -7, 6, -6, 0, 1], dtype)
    b = np.array([2, 2, -2, -2, 3, 3, 5, -5], dtype)
    (y,) = run_op("FloorDiv", [In(a), In(b)], {"T": T(dtype)}, out_dtypes=[dtype])
    np.testing.assert_array_equal(y, np.floor_divide(a, b))  # TF FloorDiv == Python //


UNARY = {
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Sqrt": np.sqrt,
    "Exp": np.exp,
    "Abs": np.abs,
    "Reciprocal": lambda x: 1 / x,
    "Identity": lambda x: x,
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    x = rand(3, 4)
    if op in ("Sqrt", "Reciprocal"):
        x = np.abs(x) + 0.1
    (y,) = run_op(op, [In(x)], {"T": T()})
    np.testing.assert_allclose(y, UNARY[op](x), rtol=1e-5)


def test_leaky_relu_uses_alpha():
    x = rand(10)
    (y,) = run_op("LeakyRelu", [In(x)], {"T": T(), "alpha": F(0.1)})
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.1 * x), rtol=1e-6)


def test_addn():
    a, b, c = rand(2, 3), rand(2, 3), rand(2, 3)
    (y,) = run_op("AddN", [In(a), In(b), c], {"T": T(), "N": I(3)})
    np.testing.assert_allclose(y, a + b + c, rtol=1e-6)


def test_cast_truncates_towards_zero():
    x = np.array([1.7, -1.7, 2.5, -0.2], np.float32)
    (y,) = run_op("Cast", [In(x)], {"SrcT": T(), "DstT": T(np.int32)}, out_dtypes=[np.int32])
    np.testing.assert_array_equal(y, [1, -1, 2, 0])


def test_select():
    c = RNG.random((3, 4)) > 0.5
    a, b = rand(3, 4), rand(3, 4)
    (y,) = run_op("Select", [In(c), In(a), b], {"T": T()})
    np.testing.assert_array_equal(y, np.where(c, a, b))


# -- shape and layout -----------------------------------------------------------------------------
def test_pad_and_padv2():
    x = rand(1, 2, 3, 2)
    pads = np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32)
    (y,) = run_op("Pad", [In(x), pads], {"T": T()})
    np.testing.assert_array_equal(y, np.pad(x, pads))
    (y,) = run_op("PadV2", [In(x), pads, np.float32(-3.0)], {"T": T()})
    np.testing.assert_array_equal(y, np.pad(x, pads, constant_values=-3.0))


def test_transpose():
    x = rand(2, 3, 4)
    (y,) = run_op("Transpose", [In(x), np.array([2, 0, 1], np.int32)], {"T": T()})
    np.testing.assert_array_equal(y, x.transpose(2, 0, 1))


def test_reshape_const_and_computed_shape():
    x = rand(2, 3, 4)
    (y,) = run_op("Reshape", [In(x), np.array([4, -1], np.int32)], {"T": T()})
    np.testing.assert_array_equal(y, x.reshape(4, -1))
    (y,) = run_op("Reshape", [In(x), In(np.array([3, 8], np.int64))], {"T": T()})
    np.testing.assert_array_equal(y, x.reshape(3, 8))


@pytest.mark.parametrize("dim", [0, 2, -1])
def test_expand_dims(dim):
    x = rand(2, 3)
    (y,) = run_op("ExpandDims", [In(x), np.int32(dim)], {"T": T()})
    np.testing.assert_array_equal(y, np.expand_dims(x, dim))


def test_squeeze_given_and_all_dims():
    x = rand(1, 3, 1, 2)
    (y,) = run_op("Squeeze", [In(x)], {"T": T(), "squeeze_dims": INTS([2])})
    assert y.shape == (1, 3, 2)
    (y,) = run_op("Squeeze", [In(x)], {"T": T()})
    np.testing.assert_array_equal(y, x.squeeze())


def test_concat_v2_negative_axis():
    a, b = rand(2, 3), rand(2, 5)
    (y,) = run_op("ConcatV2", [In(a), b, np.int32(-1)], {"T": T(), "N": I(2)})
    np.testing.assert_array_equal(y, np.concatenate([a, b], -1))


def test_pack_and_unpack():
    a, b = rand(2, 3), rand(2, 3)
    (y,) = run_op("Pack", [In(a), In(b)], {"T": T(), "N": I(2), "axis": I(1)})
    np.testing.assert_array_equal(y, np.stack([a, b], 1))
    x = rand(2, 3, 4)
    ys = run_op("Unpack", [In(x)], {"T": T(), "num": I(3), "axis": I(1)}, n_out=3)
    for k in range(3):
        np.testing.assert_array_equal(ys[k], x[:, k])
    (y,) = run_op("Unpack", [In(x[:1])], {"T": T(), "num": I(1), "axis": I(0)})
    np.testing.assert_array_equal(y, x[0])


def test_split_and_splitv():
    x = rand(2, 6)
    ys = run_op("Split", [np.int32(1), In(x)], {"T": T(), "num_split": I(3)}, n_out=3)
    for got, want in zip(ys, np.split(x, 3, axis=1)):
        np.testing.assert_array_equal(got, want)
    ys = run_op(
        "SplitV",
        [In(x), np.array([1, 5], np.int32), np.int32(-1)],
        {"T": T(), "num_split": I(2)},
        n_out=2,
    )
    np.testing.assert_array_equal(ys[0], x[:, :1])
    np.testing.assert_array_equal(ys[1], x[:, 1:])


STRIDED = [
    # (begin, end, strides, begin_mask, end_mask, new_axis_mask, shrink_axis_mask, numpy index)
    ([1, 0], [3, 4], [1, 2], 0, 0, 0, 0, np.s_[1:3, 0:4:2]),
    ([0, 1], [0, 0], [1, 1], 1, 3, 0, 0, np.s_[:, 1:]),
    ([0, 1], [0, 0], [1, 1], 1, 2, 0, 0, np.s_[:0, 1:]),  # end 0 without end mask: empty
    ([2, 0], [3, 0], [1, 1], 0, 2, 0, 1, np.s_[2, :]),
    ([-1, 0], [0, 0], [1, 1], 0, 2, 0, 1, np.s_[-1, :]),
    ([0, 0, 0], [0, 0, 0], [1, 1, 1], 3, 3, 4, 0, np.s_[:, :, None]),
    ([0, 0], [0, 0], [1, -1], 3, 3, 0, 0, np.s_[:, ::-1]),
    ([0, 2, 0], [0, 3, 0], [1, 1, 1], 1, 1, 4, 2, np.s_[:, 2, None]),
]


@pytest.mark.parametrize("begin,end,strides,bm,em,nm,sm,index", STRIDED)
def test_strided_slice(begin, end, strides, bm, em, nm, sm, index):
    x = rand(4, 5, 3)
    attr = {
        "T": T(),
        "Index": T(np.int32),
        "begin_mask": I(bm),
        "end_mask": I(em),
        "ellipsis_mask": I(0),
        "new_axis_mask": I(nm),
        "shrink_axis_mask": I(sm),
    }
    args = [In(x)] + [np.array(v, np.int32) for v in (begin, end, strides)]
    (y,) = run_op("StridedSlice", args, attr)
    np.testing.assert_array_equal(y, x[index])


def test_strided_slice_with_ellipsis_is_refused():
    attr = {"T": T(), "ellipsis_mask": I(1)}
    args = [In(rand(2, 2))] + [np.array([0], np.int32)] * 3
    with pytest.raises(UnsupportedOpError, match="ellipsis"):
        run_op("StridedSlice", args, attr)


def test_tile_fill_range():
    x = rand(2, 3)
    (y,) = run_op("Tile", [In(x), np.array([2, 1], np.int32)], {"T": T()})
    np.testing.assert_array_equal(y, np.tile(x, (2, 1)))
    (y,) = run_op(
        "Fill",
        [In(np.array([2, 3], np.int32)), np.float32(1.5)],
        {"T": T(), "index_type": T(np.int32)},
    )
    np.testing.assert_array_equal(y, np.full((2, 3), 1.5))
    (y,) = run_op("Range", [np.float32(0.5), In(np.float32(4.0)), np.float32(1.0)], {"Tidx": T()})
    np.testing.assert_array_equal(y, np.arange(0.5, 4.0, 1.0))


def test_shape_and_size_are_int32():
    x = rand(2, 3, 5)
    (y,) = run_op("Shape", [In(x)], {"T": T(), "out_type": T(np.int32)}, out_dtypes=[np.int32])
    assert y.dtype == np.int32 and list(y) == [2, 3, 5]
    (y,) = run_op("Size", [In(x)], {"T": T(), "out_type": T(np.int32)}, out_dtypes=[np.int32])
    assert y.dtype == np.int32 and int(y) == 30


def test_sparse_to_dense_constant_form():
    args = [
        np.array([[0, 1], [2, 0]], np.int64),
        np.array([3, 2], np.int64),
        np.array([5, 7], np.int64),
        np.int64(-1),
    ]
    # a graph input keeps the folded constant from being the graph's only content
    (y,) = run_op(
        "SparseToDense", args, {"T": T(np.int64), "Tindices": T(np.int64)}, out_dtypes=[np.int64]
    )
    np.testing.assert_array_equal(y, [[-1, 5], [-1, -1], [7, -1]])


# -- reductions and indexing ----------------------------------------------------------------------
@pytest.mark.parametrize("op,fn", [("Max", np.max), ("Sum", np.sum)])
@pytest.mark.parametrize("axes,keep", [(np.int32(1), False), (np.array([0, 2], np.int32), True)])
def test_reductions_take_scalar_or_vector_axes(op, fn, axes, keep):
    x = rand(2, 3, 4)
    (y,) = run_op(op, [In(x), axes], {"T": T(), "Tidx": T(np.int32), "keep_dims": B(keep)})
    np.testing.assert_allclose(y, fn(x, axis=tuple(np.atleast_1d(axes)), keepdims=keep), rtol=1e-5)


def test_argmax_is_int32():
    x = rand(3, 7)
    (y,) = run_op(
        "ArgMax",
        [In(x), np.int32(1)],
        {"T": T(), "output_type": T(np.int32)},
        out_dtypes=[np.int32],
    )
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, x.argmax(1))


def test_topk_values_and_int32_indices():
    x = rand(2, 9)
    values, idx = run_op(
        "TopKV2",
        [In(x), np.int32(3)],
        {"T": T(), "sorted": B(True)},
        n_out=2,
        out_dtypes=[np.float32, np.int32],
    )
    order = np.argsort(-x, axis=1)[:, :3]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, 1))


def test_gather_nd():
    x = rand(3, 4, 5)
    idx = np.array([[0, 1], [2, 3], [1, 0]], np.int32)
    (y,) = run_op("GatherNd", [In(x), In(idx)], {"Tparams": T(), "Tindices": T(np.int32)})
    np.testing.assert_array_equal(y, x[idx[:, 0], idx[:, 1]])


def test_unknown_op_is_refused_by_name():
    with pytest.raises(UnsupportedOpError, match="Cumsum"):
        run_op("Cumsum", [In(rand(3)), np.int32(0)], {"T": T()})


def test_every_supported_op_has_a_test():
    tested = (
        set(BINARY)
        | set(UNARY)
        | {
            "Conv2D",
            "_FusedConv2D",
            "DepthwiseConv2dNative",
            "FusedDepthwiseConv2dNative",
            "MaxPool",
            "ResizeBilinear",
            "LogicalAnd",
            "FloorDiv",
            "LeakyRelu",
            "AddN",
            "Cast",
            "Select",
            "Pad",
            "PadV2",
            "Transpose",
            "Reshape",
            "ExpandDims",
            "Squeeze",
            "ConcatV2",
            "Pack",
            "Unpack",
            "Split",
            "SplitV",
            "StridedSlice",
            "Tile",
            "Fill",
            "Range",
            "Shape",
            "Size",
            "SparseToDense",
            "Max",
            "Sum",
            "ArgMax",
            "TopKV2",
            "GatherNd",
            "Placeholder",
            "Const",
        }
    )
    assert set(SUPPORTED_OPS) == tested


# -- the reader -----------------------------------------------------------------------------------
def _write_model(tmp_path: Path, weights_bytes: bytes, manifest: list[dict]) -> Path:
    nodes = [
        {"name": w["name"], "op": "Const", "attr": {"dtype": T(w.pop("_tf", np.float32))}}
        for w in manifest
    ]
    doc = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": ["w.bin"], "weights": manifest}],
    }
    (tmp_path / "w.bin").write_bytes(weights_bytes)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    return path


def test_reader_dequantizes_float16_uint8_and_widens_int64(tmp_path):
    half = np.array([1.5, -2.25], np.float16)
    codes = np.array([0, 10, 255], np.uint8)
    ints = np.array([3, -4], np.int32)
    manifest = [
        {"name": "h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {
            "name": "q",
            "shape": [3],
            "dtype": "float32",
            "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.5},
        },
        {"name": "i", "shape": [2], "dtype": "int32", "_tf": np.int64},
    ]
    graph = load_tfjs_graph(
        _write_model(tmp_path, half.tobytes() + codes.tobytes() + ints.tobytes(), manifest)
    )
    np.testing.assert_array_equal(graph.weights["h"], [1.5, -2.25])
    np.testing.assert_allclose(graph.weights["q"], [-1.0, 4.0, 126.5])
    assert graph.weights["i"].dtype == np.int64 and list(graph.weights["i"]) == [3, -4]


def test_reader_rejects_short_shards_and_other_formats(tmp_path):
    manifest = [{"name": "w", "shape": [4], "dtype": "float32"}]
    path = _write_model(tmp_path, np.zeros(3, np.float32).tobytes(), manifest)
    with pytest.raises(TfjsFormatError, match="too short"):
        load_tfjs_graph(path)
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": {}}))
    with pytest.raises(TfjsFormatError, match="not a TF.js graph model"):
        load_tfjs_graph(path)


# -- whole models vs TensorFlow -------------------------------------------------------------------
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    "model", ["nanodet", "movenet-thunder", "movenet-lightning", "movenet-multipose"]
)
def test_converted_model_matches_tensorflow(model):
    import cv2

    from mahmr_ros.offline import human_models

    tfjs_json = human_models.tfjs_dir() / f"{model}.json"
    assert tfjs_json.is_file(), f"{tfjs_json} missing; fetch it with: {human_models.SETUP_COMMAND}"
    sys.path.insert(0, str(GOLDEN))
    try:
        from make_tfjs_golden import IMAGE, golden_inputs
    finally:
        sys.path.remove(str(GOLDEN))
    golden = np.load(GOLDEN / "tfjs_models.npz")
    feed = golden_inputs(cv2.imread(str(IMAGE), cv2.IMREAD_COLOR))[model]
    onnx_model = convert_tfjs_to_onnx(load_tfjs_graph(tfjs_json))
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: feed})))
    for name, value in outputs.items():
        want = golden[f"{model}/{name}"]
        if (
            model == "nanodet"
        ):  # stored: the rows of the top anchors of the class output of the same level
            assert list(value.shape) == list(golden[f"{model}/{name}/shape"])
            cls = next(k for k in names if outputs[k].shape == (1, value.shape[1], 80))
            value = value[0, golden[f"{model}/{cls}/rows"]]
        np.testing.assert_allclose(value, want, atol=1e-4, err_msg=f"{model}/{name}")
