"""The TensorFlow op handlers of the TF.js -> ONNX converter (:mod:`mahmr_ros.offline.tfjs_onnx`).

One ``op_<TF op name>`` method per TensorFlow op, written from ``tf.raw_ops`` semantics and the
ONNX operator specs (opset 18). Each reads its TF node and appends ONNX nodes through the
converter's helpers (``emit``, ``inp``, ``const``, ``const_of``, ``is_const``, ``to_int64``,
``fresh``, ``ref``), which :class:`~mahmr_ros.offline.tfjs_onnx.TfjsToOnnx` provides; its output
tensors are named ``ref(node.name, k)``.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from mahmr_ros.offline.tfjs_graph import TfjsNode

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]
_BINARY = {
    "Add": "Add",
    "AddV2": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
    "Equal": "Equal",
    "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual",
    "Less": "Less",
    "LogicalAnd": "And",
}
_UNARY = {
    "Sigmoid": "Sigmoid",
    "Sqrt": "Sqrt",
    "Exp": "Exp",
    "Abs": "Abs",
    "Reciprocal": "Reciprocal",
}


class UnsupportedOpError(NotImplementedError):
    """The graph uses a TensorFlow op (or an op variant) this converter does not implement."""


def onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class OpHandlers:
    """Mixin of the op handlers; the converter class supplies the emission helpers."""

    # -- elementwise ------------------------------------------------------------------------------
    def _binary(self, node: TfjsNode) -> None:
        self.emit(_BINARY[node.op], [self.inp(node, 0), self.inp(node, 1)], [self.ref(node.name)])

    def _unary(self, node: TfjsNode) -> None:
        self.emit(_UNARY[node.op], [self.inp(node, 0)], [self.ref(node.name)])

    def op_Identity(self, node: TfjsNode) -> None:
        self.emit("Identity", [self.inp(node, 0)], [self.ref(node.name)])

    def op_LeakyRelu(self, node: TfjsNode) -> None:
        self.emit(
            "LeakyRelu",
            [self.inp(node, 0)],
            [self.ref(node.name)],
            alpha=node.attr_float("alpha", 0.2),
        )

    def op_SquaredDifference(self, node: TfjsNode) -> None:
        (diff,) = self.emit("Sub", [self.inp(node, 0), self.inp(node, 1)])
        self.emit("Mul", [diff, diff], [self.ref(node.name)])

    def op_AddN(self, node: TfjsNode) -> None:
        self.emit(
            "Sum", [self.inp(node, k) for k in range(len(node.inputs))], [self.ref(node.name)]
        )

    def op_Cast(self, node: TfjsNode) -> None:
        self.emit(
            "Cast",
            [self.inp(node, 0)],
            [self.ref(node.name)],
            to=onnx_dtype(node.attr_dtype("DstT")),
        )

    def op_FloorDiv(self, node: TfjsNode) -> None:
        a, b = self.inp(node, 0), self.inp(node, 1)
        dtype = node.attr_dtype("T")
        if np.issubdtype(dtype, np.floating):
            (q,) = self.emit("Div", [a, b])
            self.emit("Floor", [q], [self.ref(node.name)])
            return
        # integer Div truncates towards 0; floor differs by one where the remainder is non-zero and
        # the remainder and divisor have opposite signs
        zero = self.const(np.zeros((), dtype), "zero")
        (q,) = self.emit("Div", [a, b])
        (qb,) = self.emit("Mul", [q, b])
        (r,) = self.emit("Sub", [a, qb])
        (r_zero,) = self.emit("Equal", [r, zero])
        (r_nonzero,) = self.emit("Not", [r_zero])
        (r_neg,) = self.emit("Less", [r, zero])
        (b_neg,) = self.emit("Less", [b, zero])
        (signs_differ,) = self.emit("Xor", [r_neg, b_neg])
        (fix,) = self.emit("And", [r_nonzero, signs_differ])
        (fix_t,) = self.emit("Cast", [fix], to=onnx_dtype(dtype))
        self.emit("Sub", [q, fix_t], [self.ref(node.name)])

    def op_Select(self, node: TfjsNode) -> None:
        # the models only use the same-shape form; Where broadcasts from the trailing dims like
        # SelectV2
        self.emit("Where", [self.inp(node, k) for k in range(3)], [self.ref(node.name)])

    # -- convolution and pooling (NHWC) -----------------------------------------------------------
    def _padding(self, node: TfjsNode, kernel: tuple[int, int] = (1, 1)) -> dict:
        padding = node.attr_str("padding")
        dilations = (node.attr_ints("dilations") or [1, 1, 1, 1])[1:3]
        if padding == "SAME" and max(dilations) > 1:
            # onnxruntime rejects auto_pad with dilation; TF allows dilation only with stride 1,
            # where the SAME padding does not depend on the input size
            if max((node.attr_ints("strides") or [1, 1, 1, 1])[1:3]) > 1:
                raise UnsupportedOpError(
                    f"{node.op} {node.name}: dilation together with stride > 1"
                )
            total = [(k - 1) * d for k, d in zip(kernel, dilations)]
            return {
                "pads": [
                    total[0] // 2,
                    total[1] // 2,
                    total[0] - total[0] // 2,
                    total[1] - total[1] // 2,
                ]
            }
        if padding == "SAME":
            return {"auto_pad": "SAME_UPPER"}  # TF puts the odd pixel at the end, like SAME_UPPER
        if padding == "VALID":
            return {"auto_pad": "VALID"}
        if padding == "EXPLICIT":
            p = node.attr_ints("explicit_paddings")  # NHWC (before, after) pairs
            return {"pads": [p[2], p[4], p[3], p[5]]}
        raise UnsupportedOpError(f"{node.op} {node.name}: padding '{padding}'")

    def _check_nhwc(self, node: TfjsNode) -> None:
        if node.attr_str("data_format", "NHWC") != "NHWC":
            raise UnsupportedOpError(f"{node.op} {node.name}: only NHWC data_format is supported")

    def _conv(self, node: TfjsNode, depthwise: bool, fused: bool) -> None:
        self._check_nhwc(node)
        filt = self.const_of(node, 1)  # (H, W, Cin, Cout) or depthwise (H, W, Cin, M)
        kh, kw, cin, cout = filt.shape
        if depthwise:
            weight = filt.reshape(kh, kw, cin * cout).transpose(2, 0, 1)[
                :, None
            ]  # (Cin*M, 1, H, W)
            group = cin
        else:
            weight = filt.transpose(3, 2, 0, 1)  # (Cout, Cin, H, W)
            group = 1
        inputs = [None, self.const(np.ascontiguousarray(weight, np.float32), "weight")]
        activation = None
        if fused:
            ops = node.attr_strs("fused_ops")
            if not ops or ops[0] != "BiasAdd" or len(ops) > 2:
                raise UnsupportedOpError(f"{node.op} {node.name}: fused ops {ops}")
            inputs.append(self.inp(node, 2))
            activation = ops[1] if len(ops) == 2 else None
        strides = node.attr_ints("strides") or [1, 1, 1, 1]
        dilations = node.attr_ints("dilations") or [1, 1, 1, 1]
        (x,) = self.emit("Transpose", [self.inp(node, 0)], perm=_NHWC_TO_NCHW)
        inputs[0] = x
        (y,) = self.emit(
            "Conv",
            inputs,
            kernel_shape=[kh, kw],
            strides=strides[1:3],
            dilations=dilations[1:3],
            group=group,
            **self._padding(node, (kh, kw)),
        )
        if activation == "Relu":
            (y,) = self.emit("Relu", [y])
        elif activation == "Relu6":
            (y,) = self.emit("Clip", [y, self.const(np.float32(0)), self.const(np.float32(6))])
        elif activation == "LeakyRelu":
            (y,) = self.emit("LeakyRelu", [y], alpha=node.attr_float("leakyrelu_alpha", 0.2))
        elif activation == "Sigmoid":
            (y,) = self.emit("Sigmoid", [y])
        elif activation is not None:
            raise UnsupportedOpError(f"{node.op} {node.name}: fused activation {activation}")
        self.emit("Transpose", [y], [self.ref(node.name)], perm=_NCHW_TO_NHWC)

    def op_Conv2D(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=False, fused=False)

    def op__FusedConv2D(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=False, fused=True)

    def op_DepthwiseConv2dNative(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=True, fused=False)

    def op_FusedDepthwiseConv2dNative(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=True, fused=True)

    def op_MaxPool(self, node: TfjsNode) -> None:
        self._check_nhwc(node)
        ksize, strides = node.attr_ints("ksize"), node.attr_ints("strides")
        (x,) = self.emit("Transpose", [self.inp(node, 0)], perm=_NHWC_TO_NCHW)
        (y,) = self.emit(
            "MaxPool", [x], kernel_shape=ksize[1:3], strides=strides[1:3], **self._padding(node)
        )
        self.emit("Transpose", [y], [self.ref(node.name)], perm=_NCHW_TO_NHWC)

    def op_ResizeBilinear(self, node: TfjsNode) -> None:
        if node.attr_bool("align_corners"):
            mode = "align_corners"
        elif node.attr_bool("half_pixel_centers"):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        (x,) = self.emit(
            "Cast", [self.inp(node, 0)], to=TensorProto.FLOAT
        )  # TF always returns float32
        # NCHW Resize with full-rank sizes (N, C, H', W'): Resize's ``axes`` attribute made
        # onnxruntime 1.32's layout optimiser fail at session creation
        (x,) = self.emit("Transpose", [x], perm=_NHWC_TO_NCHW)
        (batch_channels,) = self.emit("Shape", [x], start=0, end=2)
        (sizes,) = self.emit("Concat", [batch_channels, self.to_int64(node, 1, flat=True)], axis=0)
        (y,) = self.emit(
            "Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode=mode
        )
        self.emit("Transpose", [y], [self.ref(node.name)], perm=_NCHW_TO_NHWC)

    # -- shape and layout -------------------------------------------------------------------------
    def op_Pad(self, node: TfjsNode) -> None:
        pads = self.const_of(node, 1).astype(np.int64)  # (rank, 2) before/after
        inputs = [self.inp(node, 0), self.const(np.concatenate([pads[:, 0], pads[:, 1]]), "pads")]
        if node.op == "PadV2":
            inputs.append(self.inp(node, 2))
        self.emit("Pad", inputs, [self.ref(node.name)], mode="constant")

    op_PadV2 = op_Pad

    def op_Transpose(self, node: TfjsNode) -> None:
        perm = [int(p) for p in self.const_of(node, 1)]
        self.emit("Transpose", [self.inp(node, 0)], [self.ref(node.name)], perm=perm)

    def op_Reshape(self, node: TfjsNode) -> None:
        attrs = {}
        if self.is_const(node, 1) and 0 in self.const_of(node, 1):
            attrs["allowzero"] = 1  # a TF 0 is an empty dim, an ONNX 0 would copy the input's dim
        self.emit(
            "Reshape", [self.inp(node, 0), self.to_int64(node, 1)], [self.ref(node.name)], **attrs
        )

    def op_ExpandDims(self, node: TfjsNode) -> None:
        axis = int(self.const_of(node, 1).reshape(-1)[0])
        self.emit(
            "Unsqueeze",
            [self.inp(node, 0), self.const(np.array([axis], np.int64))],
            [self.ref(node.name)],
        )

    def op_Squeeze(self, node: TfjsNode) -> None:
        dims = node.attr_ints("squeeze_dims")
        inputs = [self.inp(node, 0)]
        if dims:
            inputs.append(self.const(np.array(dims, np.int64), "axes"))
        self.emit("Squeeze", inputs, [self.ref(node.name)])

    def op_ConcatV2(self, node: TfjsNode) -> None:
        n = len(node.inputs) - 1
        axis = int(self.const_of(node, n))
        self.emit(
            "Concat", [self.inp(node, k) for k in range(n)], [self.ref(node.name)], axis=axis
        )

    def op_Pack(self, node: TfjsNode) -> None:
        axis = node.attr_int("axis", 0)
        axes = self.const(np.array([axis], np.int64), "axes")
        parts = [
            self.emit("Unsqueeze", [self.inp(node, k), axes])[0] for k in range(len(node.inputs))
        ]
        self.emit("Concat", parts, [self.ref(node.name)], axis=axis)

    def op_Unpack(self, node: TfjsNode) -> None:
        axis, num = node.attr_int("axis", 0), node.attr_int("num")
        axes = self.const(np.array([axis], np.int64), "axes")
        parts = (
            [self.inp(node, 0)]
            if num == 1
            else self.emit("Split", [self.inp(node, 0)], n_out=num, axis=axis, num_outputs=num)
        )
        for k, part in enumerate(parts):
            self.emit("Squeeze", [part, axes], [self.ref(node.name, k)])

    def op_Split(self, node: TfjsNode) -> None:
        axis, num = int(self.const_of(node, 0)), node.attr_int("num_split")
        outs = [self.ref(node.name, k) for k in range(num)]
        if num == 1:
            self.emit("Identity", [self.inp(node, 1)], outs)
        else:
            self.emit("Split", [self.inp(node, 1)], outs, axis=axis, num_outputs=num)

    def op_SplitV(self, node: TfjsNode) -> None:
        sizes = self.const_of(node, 1).astype(np.int64)
        axis = int(self.const_of(node, 2))
        if (sizes < 0).any():
            raise UnsupportedOpError(
                f"SplitV {node.name}: a -1 split size needs a known dim; not supported"
            )
        outs = [self.ref(node.name, k) for k in range(len(sizes))]
        self.emit("Split", [self.inp(node, 0), self.const(sizes, "split")], outs, axis=axis)

    def op_StridedSlice(self, node: TfjsNode) -> None:
        begin, end, strides = (self.const_of(node, k).astype(np.int64) for k in (1, 2, 3))
        masks = {
            k: node.attr_int(f"{k}_mask", 0)
            for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")
        }
        if masks["ellipsis"]:
            raise UnsupportedOpError(f"StridedSlice {node.name}: ellipsis_mask is not supported")
        starts, ends, axes, steps, shrink, new_axes = [], [], [], [], [], []
        in_axis = out_axis = 0
        for i in range(len(begin)):
            bit = 1 << i
            if masks["new_axis"] & bit:
                new_axes.append(out_axis)
                out_axis += 1
                continue
            step = int(strides[i])
            start, stop = int(begin[i]), int(end[i])
            if masks["shrink_axis"] & bit:
                stop, step = (start + 1 if start != -1 else _INT64_MAX), 1
                shrink.append(in_axis)
            else:
                if masks["begin"] & bit:
                    start = 0 if step > 0 else _INT64_MAX
                if masks["end"] & bit:
                    stop = _INT64_MAX if step > 0 else _INT64_MIN
                out_axis += 1
            starts.append(start)
            ends.append(stop)
            axes.append(in_axis)
            steps.append(step)
            in_axis += 1
        y = self.inp(node, 0)
        if axes:
            (y,) = self.emit(
                "Slice",
                [y]
                + [
                    self.const(np.array(v, np.int64), "slice") for v in (starts, ends, axes, steps)
                ],
            )
        if shrink:
            (y,) = self.emit("Squeeze", [y, self.const(np.array(shrink, np.int64), "axes")])
        if new_axes:
            (y,) = self.emit("Unsqueeze", [y, self.const(np.array(new_axes, np.int64), "axes")])
        self.emit("Identity", [y], [self.ref(node.name)])

    def op_Tile(self, node: TfjsNode) -> None:
        self.emit("Tile", [self.inp(node, 0), self.to_int64(node, 1)], [self.ref(node.name)])

    def op_Fill(self, node: TfjsNode) -> None:
        self.emit("Expand", [self.inp(node, 1), self.to_int64(node, 0)], [self.ref(node.name)])

    def op_Range(self, node: TfjsNode) -> None:
        self.emit("Range", [self.inp(node, k) for k in range(3)], [self.ref(node.name)])

    def op_Shape(self, node: TfjsNode) -> None:
        (shape,) = self.emit("Shape", [self.inp(node, 0)])
        self.emit(
            "Cast", [shape], [self.ref(node.name)], to=onnx_dtype(node.attr_dtype("out_type"))
        )

    def op_Size(self, node: TfjsNode) -> None:
        (size,) = self.emit("Size", [self.inp(node, 0)])
        self.emit(
            "Cast", [size], [self.ref(node.name)], to=onnx_dtype(node.attr_dtype("out_type"))
        )

    def op_SparseToDense(self, node: TfjsNode) -> None:
        # only the constant form (an ONNX-to-TF artefact in NanoDet's reshapes) is folded here
        if not all(self.is_const(node, k) for k in range(4)):
            raise UnsupportedOpError(
                f"SparseToDense {node.name}: only constant inputs are supported"
            )
        indices, shape, values, default = (self.const_of(node, k) for k in range(4))
        dense = np.full(shape.astype(np.int64).reshape(-1), default, dtype=node.attr_dtype("T"))
        indices = (
            indices.reshape(len(indices), -1) if indices.size else indices.reshape(0, dense.ndim)
        )
        values = np.broadcast_to(values, (len(indices),))
        for idx, v in zip(indices, values):
            dense[tuple(idx)] = v
        self.initializers[self.ref(node.name)] = dense

    # -- reductions, indexing ---------------------------------------------------------------------
    def _reduce(self, node: TfjsNode, onnx_op: str) -> None:
        keep = int(node.attr_bool("keep_dims"))
        self.emit(
            onnx_op,
            [self.inp(node, 0), self.to_int64(node, 1, flat=True)],
            [self.ref(node.name)],
            keepdims=keep,
        )

    def op_Max(self, node: TfjsNode) -> None:
        self._reduce(node, "ReduceMax")

    def op_Sum(self, node: TfjsNode) -> None:
        self._reduce(node, "ReduceSum")

    def op_ArgMax(self, node: TfjsNode) -> None:
        axis = int(self.const_of(node, 1))
        (idx,) = self.emit("ArgMax", [self.inp(node, 0)], axis=axis, keepdims=0)
        self.emit(
            "Cast", [idx], [self.ref(node.name)], to=onnx_dtype(node.attr_dtype("output_type"))
        )

    def op_TopKV2(self, node: TfjsNode) -> None:
        k = self.to_int64(node, 1, flat=True)
        values, idx = self.emit(
            "TopK",
            [self.inp(node, 0), k],
            [self.ref(node.name), self.fresh("topk_idx")],
            axis=-1,
            largest=1,
            sorted=1,
        )
        self.emit(
            "Cast", [idx], [self.ref(node.name, 1)], to=TensorProto.INT32
        )  # TopKV2 indices are int32

    def op_GatherNd(self, node: TfjsNode) -> None:
        self.emit("GatherND", [self.inp(node, 0), self.to_int64(node, 1)], [self.ref(node.name)])


for _tf_op in _BINARY:
    setattr(OpHandlers, f"op_{_tf_op}", OpHandlers._binary)
for _tf_op in _UNARY:
    setattr(OpHandlers, f"op_{_tf_op}", OpHandlers._unary)
