"""Convert a TensorFlow.js graph model to ONNX, one TensorFlow op at a time (our own converter, ``onnx`` API).

Written from the TensorFlow raw-op semantics (``tf.raw_ops``) and the ONNX operator specs (opset 18). It
covers the ops of the detection and keypoint models we ship (NanoDet, MoveNet single-pose and MultiPose; see
:data:`SUPPORTED_OPS`) and refuses any other op by name. Layout: TensorFlow convolutions and pooling work on
NHWC tensors, ONNX's on NCHW, so each such op is wrapped in two Transposes; ONNX Runtime's layout optimiser
cancels the back-to-back pairs between consecutive convolutions. Weights stay constants (initializers);
filters are re-laid out at conversion time (HWIO -> OIHW, depthwise HW C M -> (C*M) 1 H W with ``group=C``).

TensorFlow semantics kept on purpose (each would silently differ with a naive mapping):

* ``FloorDiv`` on integers rounds towards -inf (ONNX ``Div`` truncates towards 0): corrected where signs
  differ.
* ``Shape``/``Size``/``ArgMax``/``TopKV2`` return int32 in TF (ONNX: int64): cast back to the TF dtype.
* Reduce ops take their axes as a 1-D int64 input (ONNX Runtime rejects a scalar axes tensor).
* ``StridedSlice`` masks (begin/end/shrink/new-axis) become Slice + Squeeze + Unsqueeze; ellipsis is refused.
* ``ResizeBilinear``'s ``half_pixel_centers`` / ``align_corners`` map to Resize's coordinate transformation.

Usage::

    model = convert_tfjs_to_onnx(load_tfjs_graph("movenet-thunder.json"))
    onnx.save(model, "movenet-thunder.onnx")
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mahmr_ros.offline.tfjs_graph import TfjsGraph, TfjsNode

OPSET = 18
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
_UNARY = {"Sigmoid": "Sigmoid", "Sqrt": "Sqrt", "Exp": "Exp", "Abs": "Abs", "Reciprocal": "Reciprocal"}


class UnsupportedOpError(NotImplementedError):
    """The graph uses a TensorFlow op (or an op variant) this converter does not implement."""


def _onnx_dtype(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class _Converter:
    def __init__(self, graph: TfjsGraph):
        self.graph = graph
        self.by_name = {node.name: node for node in graph.nodes}
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._uid = 0

    # -- naming and emission -------------------------------------------------------------------------------
    @staticmethod
    def ref(name: str, index: int = 0) -> str:
        """ONNX tensor name of TF output ``index`` of node ``name``."""
        return name if index == 0 else f"{name}:{index}"

    def inp(self, node: TfjsNode, k: int) -> str:
        """ONNX tensor name of input ``k``; a Const becomes an initializer only once used as a tensor (the
        ones read as attributes, e.g. perm or axis, would be dead weight)."""
        if k >= len(node.inputs):
            raise UnsupportedOpError(f"{node.op} {node.name}: expected input {k}, has {len(node.inputs)}")
        src, index = node.inputs[k]
        if self.by_name[src].op == "Const" and src not in self.initializers:
            self.initializers[src] = self.graph.weights[src]
        return self.ref(src, index)

    def const_of(self, node: TfjsNode, k: int) -> np.ndarray:
        """Value of input ``k`` when it is a Const node (attributes such as perm/axis/paddings must be)."""
        src, index = node.inputs[k]
        if self.by_name[src].op != "Const" or index != 0:
            raise UnsupportedOpError(f"{node.op} {node.name}: input {k} ({src}) must be a constant")
        return self.graph.weights[src]

    def is_const(self, node: TfjsNode, k: int) -> bool:
        return self.by_name[node.inputs[k][0]].op == "Const"

    def fresh(self, hint: str) -> str:
        self._uid += 1
        return f"{hint}__{self._uid}"

    def const(self, value, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers[name] = np.asarray(value)
        return name

    def emit(self, op: str, inputs: list[str], outputs: list[str] | None = None, n_out: int = 1, **attrs):
        """Append one ONNX node; returns its output names (fresh unique names unless given)."""
        if outputs is None:
            outputs = [self.fresh(op) for _ in range(n_out)]
        self.onnx_nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs

    def to_int64(self, node: TfjsNode, k: int, flat: bool = False) -> str:
        """Input ``k`` as int64 (folded when constant); ``flat`` also makes it 1-D."""
        if self.is_const(node, k):
            value = self.const_of(node, k).astype(np.int64)
            return self.const(value.reshape(-1) if flat else value, "i64")
        (cast,) = self.emit("Cast", [self.inp(node, k)], to=TensorProto.INT64)
        if flat:
            (cast,) = self.emit("Reshape", [cast, self.const(np.array([-1], np.int64))])
        return cast

    # -- conversion ------------------------------------------------------------------------------------------
    def needed_nodes(self) -> list[TfjsNode]:
        """Nodes the signature outputs depend on, in dependency order (iterative DFS)."""
        order, state = [], {}
        for spec in self.graph.outputs:
            stack = [(spec.name, False)]
            while stack:
                name, done = stack.pop()
                if name not in self.by_name:
                    raise UnsupportedOpError(f"graph references unknown node '{name}'")
                if done:
                    if state.get(name) != 2:
                        state[name] = 2
                        order.append(self.by_name[name])
                    continue
                if state.get(name):
                    continue
                state[name] = 1
                stack.append((name, True))
                for src, _ in reversed(self.by_name[name].inputs):
                    if not state.get(src):
                        stack.append((src, False))
        return order

    def convert(self) -> onnx.ModelProto:
        nodes = self.needed_nodes()
        unknown = sorted({n.op for n in nodes} - set(SUPPORTED_OPS))
        if unknown:
            raise UnsupportedOpError(f"TF ops not supported by this converter: {', '.join(unknown)}")
        input_names = {spec.name for spec in self.graph.inputs}
        for node in nodes:
            if node.op == "Placeholder":
                if node.name not in input_names:
                    raise UnsupportedOpError(f"Placeholder {node.name} is not a signature input")
                continue
            if node.op == "Const":
                continue  # added by inp() where used as a tensor
            getattr(self, f"op_{node.op}")(node)
        inputs = [
            helper.make_tensor_value_info(
                s.name, _onnx_dtype(s.dtype), [d if d >= 0 else None for d in s.shape]
            )
            for s in self.graph.inputs
        ]
        outputs = [
            helper.make_tensor_value_info(
                s.name, _onnx_dtype(s.dtype), [d if d >= 0 else None for d in s.shape]
            )
            for s in self.graph.outputs
        ]
        initializers = [numpy_helper.from_array(v, k) for k, v in self.initializers.items()]
        graph = helper.make_graph(self.onnx_nodes, "tfjs_graph", inputs, outputs, initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mahmr_ros.offline.tfjs_onnx"
        )
        model.ir_version = 8  # opset 18 needs IR >= 8; keep it as low as allowed for older onnxruntime
        onnx.checker.check_model(model)
        return model

    # -- elementwise -----------------------------------------------------------------------------------------
    def _binary(self, node: TfjsNode) -> None:
        self.emit(_BINARY[node.op], [self.inp(node, 0), self.inp(node, 1)], [self.ref(node.name)])

    def _unary(self, node: TfjsNode) -> None:
        self.emit(_UNARY[node.op], [self.inp(node, 0)], [self.ref(node.name)])

    def op_Identity(self, node: TfjsNode) -> None:
        self.emit("Identity", [self.inp(node, 0)], [self.ref(node.name)])

    def op_LeakyRelu(self, node: TfjsNode) -> None:
        self.emit(
            "LeakyRelu", [self.inp(node, 0)], [self.ref(node.name)], alpha=node.attr_float("alpha", 0.2)
        )

    def op_SquaredDifference(self, node: TfjsNode) -> None:
        (diff,) = self.emit("Sub", [self.inp(node, 0), self.inp(node, 1)])
        self.emit("Mul", [diff, diff], [self.ref(node.name)])

    def op_AddN(self, node: TfjsNode) -> None:
        self.emit("Sum", [self.inp(node, k) for k in range(len(node.inputs))], [self.ref(node.name)])

    def op_Cast(self, node: TfjsNode) -> None:
        self.emit("Cast", [self.inp(node, 0)], [self.ref(node.name)], to=_onnx_dtype(node.attr_dtype("DstT")))

    def op_FloorDiv(self, node: TfjsNode) -> None:
        a, b = self.inp(node, 0), self.inp(node, 1)
        dtype = node.attr_dtype("T")
        if np.issubdtype(dtype, np.floating):
            (q,) = self.emit("Div", [a, b])
            self.emit("Floor", [q], [self.ref(node.name)])
            return
        # integer Div truncates towards 0; floor differs by one where the remainder is non-zero and the
        # remainder and divisor have opposite signs
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
        (fix_t,) = self.emit("Cast", [fix], to=_onnx_dtype(dtype))
        self.emit("Sub", [q, fix_t], [self.ref(node.name)])

    def op_Select(self, node: TfjsNode) -> None:
        # the models only use the same-shape form; Where broadcasts from the trailing dims like SelectV2
        self.emit("Where", [self.inp(node, k) for k in range(3)], [self.ref(node.name)])

    # -- convolution and pooling (NHWC) ----------------------------------------------------------------------
    def _padding(self, node: TfjsNode, kernel: tuple[int, int] = (1, 1)) -> dict:
        padding = node.attr_str("padding")
        dilations = (node.attr_ints("dilations") or [1, 1, 1, 1])[1:3]
        if padding == "SAME" and max(dilations) > 1:
            # onnxruntime rejects auto_pad with dilation; TF allows dilation only with stride 1, where the
            # SAME padding does not depend on the input size
            if max((node.attr_ints("strides") or [1, 1, 1, 1])[1:3]) > 1:
                raise UnsupportedOpError(f"{node.op} {node.name}: dilation together with stride > 1")
            total = [(k - 1) * d for k, d in zip(kernel, dilations)]
            return {
                "pads": [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
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
            weight = filt.reshape(kh, kw, cin * cout).transpose(2, 0, 1)[:, None]  # (Cin*M, 1, H, W)
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
        (y,) = self.emit("MaxPool", [x], kernel_shape=ksize[1:3], strides=strides[1:3], **self._padding(node))
        self.emit("Transpose", [y], [self.ref(node.name)], perm=_NCHW_TO_NHWC)

    def op_ResizeBilinear(self, node: TfjsNode) -> None:
        if node.attr_bool("align_corners"):
            mode = "align_corners"
        elif node.attr_bool("half_pixel_centers"):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        (x,) = self.emit("Cast", [self.inp(node, 0)], to=TensorProto.FLOAT)  # TF always returns float32
        # NCHW Resize with full-rank sizes (N, C, H', W'): Resize's ``axes`` attribute made onnxruntime 1.32's
        # layout optimiser fail at session creation
        (x,) = self.emit("Transpose", [x], perm=_NHWC_TO_NCHW)
        (batch_channels,) = self.emit("Shape", [x], start=0, end=2)
        (sizes,) = self.emit("Concat", [batch_channels, self.to_int64(node, 1, flat=True)], axis=0)
        (y,) = self.emit("Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode=mode)
        self.emit("Transpose", [y], [self.ref(node.name)], perm=_NCHW_TO_NHWC)

    # -- shape and layout ------------------------------------------------------------------------------------
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
        self.emit("Reshape", [self.inp(node, 0), self.to_int64(node, 1)], [self.ref(node.name)], **attrs)

    def op_ExpandDims(self, node: TfjsNode) -> None:
        axis = int(self.const_of(node, 1).reshape(-1)[0])
        self.emit(
            "Unsqueeze", [self.inp(node, 0), self.const(np.array([axis], np.int64))], [self.ref(node.name)]
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
        self.emit("Concat", [self.inp(node, k) for k in range(n)], [self.ref(node.name)], axis=axis)

    def op_Pack(self, node: TfjsNode) -> None:
        axis = node.attr_int("axis", 0)
        axes = self.const(np.array([axis], np.int64), "axes")
        parts = [self.emit("Unsqueeze", [self.inp(node, k), axes])[0] for k in range(len(node.inputs))]
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
            raise UnsupportedOpError(f"SplitV {node.name}: a -1 split size needs a known dim; not supported")
        outs = [self.ref(node.name, k) for k in range(len(sizes))]
        self.emit("Split", [self.inp(node, 0), self.const(sizes, "split")], outs, axis=axis)

    def op_StridedSlice(self, node: TfjsNode) -> None:
        begin, end, strides = (self.const_of(node, k).astype(np.int64) for k in (1, 2, 3))
        masks = {
            k: node.attr_int(f"{k}_mask", 0) for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")
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
                [y] + [self.const(np.array(v, np.int64), "slice") for v in (starts, ends, axes, steps)],
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
        self.emit("Cast", [shape], [self.ref(node.name)], to=_onnx_dtype(node.attr_dtype("out_type")))

    def op_Size(self, node: TfjsNode) -> None:
        (size,) = self.emit("Size", [self.inp(node, 0)])
        self.emit("Cast", [size], [self.ref(node.name)], to=_onnx_dtype(node.attr_dtype("out_type")))

    def op_SparseToDense(self, node: TfjsNode) -> None:
        # only the constant form (an ONNX-to-TF artefact in NanoDet's reshapes) is folded here
        if not all(self.is_const(node, k) for k in range(4)):
            raise UnsupportedOpError(f"SparseToDense {node.name}: only constant inputs are supported")
        indices, shape, values, default = (self.const_of(node, k) for k in range(4))
        dense = np.full(shape.astype(np.int64).reshape(-1), default, dtype=node.attr_dtype("T"))
        indices = indices.reshape(len(indices), -1) if indices.size else indices.reshape(0, dense.ndim)
        values = np.broadcast_to(values, (len(indices),))
        for idx, v in zip(indices, values):
            dense[tuple(idx)] = v
        self.initializers[self.ref(node.name)] = dense

    # -- reductions, indexing --------------------------------------------------------------------------------
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
        self.emit("Cast", [idx], [self.ref(node.name)], to=_onnx_dtype(node.attr_dtype("output_type")))

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
        self.emit("Cast", [idx], [self.ref(node.name, 1)], to=TensorProto.INT32)  # TopKV2 indices are int32

    def op_GatherNd(self, node: TfjsNode) -> None:
        self.emit("GatherND", [self.inp(node, 0), self.to_int64(node, 1)], [self.ref(node.name)])


for _tf_op in _BINARY:
    setattr(_Converter, f"op_{_tf_op}", _Converter._binary)
for _tf_op in _UNARY:
    setattr(_Converter, f"op_{_tf_op}", _Converter._unary)

#: TensorFlow ops this converter implements (``Placeholder`` and ``Const`` included).
SUPPORTED_OPS = tuple(
    sorted({name[3:] for name in dir(_Converter) if name.startswith("op_")} | {"Placeholder", "Const"})
)


def convert_tfjs_to_onnx(
    graph: TfjsGraph, input_shapes: dict[str, list[int]] | None = None
) -> onnx.ModelProto:
    """Build an ONNX model (opset 18) computing ``graph``'s signature outputs from its signature inputs.

    ONNX inputs and outputs keep the TF node names (``"input"``, ``"Identity"``, ...), dtypes and shapes.

    Args:
        graph: the parsed TF.js model.
        input_shapes: optional {input name: shape} replacing the signature's shape, -1 for a free dim (for a
            graph whose ops compute their shapes at run time, e.g. MoveNet MultiPose at any multiple of 32).

    Raises:
        UnsupportedOpError: an op (or an op variant, e.g. an ellipsis slice) outside :data:`SUPPORTED_OPS`.
    """
    if input_shapes:
        unknown = set(input_shapes) - {spec.name for spec in graph.inputs}
        if unknown:
            raise ValueError(f"input_shapes names unknown inputs: {sorted(unknown)}")
        for spec in graph.inputs:
            spec.shape = list(input_shapes.get(spec.name, spec.shape))
    return _Converter(graph).convert()
