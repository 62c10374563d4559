"""Convert a TensorFlow.js graph model to ONNX, one TensorFlow op at a time (our own converter,
``onnx`` API).

Written from the TensorFlow raw-op semantics (``tf.raw_ops``) and the ONNX operator specs (opset
18). It covers the ops of the detection and keypoint models we ship (NanoDet, MoveNet single-pose
and MultiPose; see :data:`SUPPORTED_OPS`; the handlers live in :mod:`mahmr_ros.offline.tfjs_ops`)
and refuses any other op by name. Layout: TensorFlow convolutions and pooling work on NHWC tensors,
ONNX's on NCHW, so each such op is wrapped in two Transposes; ONNX Runtime's layout optimiser
cancels the back-to-back pairs between consecutive convolutions. Weights stay constants
(initializers);
filters are re-laid out at conversion time (HWIO -> OIHW, depthwise HW C M -> (C*M) 1 H W with
``group=C``).

TensorFlow semantics kept on purpose (each would silently differ with a naive mapping):

* ``FloorDiv`` on integers rounds towards -inf (ONNX ``Div`` truncates towards 0): corrected where
  signs differ.
* ``Shape``/``Size``/``ArgMax``/``TopKV2`` return int32 in TF (ONNX: int64): cast back to the TF
  dtype.
* Reduce ops take their axes as a 1-D int64 input (ONNX Runtime rejects a scalar axes tensor).
* ``StridedSlice`` masks (begin/end/shrink/new-axis) become Slice + Squeeze + Unsqueeze; ellipsis
  is refused.
* ``ResizeBilinear``'s ``half_pixel_centers`` / ``align_corners`` map to Resize's coordinate
  transformation.

Usage::

    model = convert_tfjs_to_onnx(load_tfjs_graph("movenet-thunder.json"))
    onnx.save(model, "movenet-thunder.onnx")
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mahmr_ros.offline.tfjs_graph import TfjsGraph, TfjsNode
from mahmr_ros.offline.tfjs_ops import OpHandlers, UnsupportedOpError, onnx_dtype

OPSET = 18


class TfjsToOnnx(OpHandlers):
    """One conversion: TF node names -> ONNX tensor names, emitted nodes and initializers."""

    def __init__(self, graph: TfjsGraph):
        self.graph = graph
        self.by_name = {node.name: node for node in graph.nodes}
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._uid = 0

    # -- naming and emission ----------------------------------------------------------------------
    @staticmethod
    def ref(name: str, index: int = 0) -> str:
        """ONNX tensor name of TF output ``index`` of node ``name``."""
        return name if index == 0 else f"{name}:{index}"

    def inp(self, node: TfjsNode, k: int) -> str:
        """ONNX tensor name of input ``k``; a Const becomes an initializer only once used as a
        tensor (the ones read as attributes, e.g. perm or axis, would be dead weight)."""
        if k >= len(node.inputs):
            raise UnsupportedOpError(
                f"{node.op} {node.name}: expected input {k}, has {len(node.inputs)}"
            )
        src, index = node.inputs[k]
        if self.by_name[src].op == "Const" and src not in self.initializers:
            self.initializers[src] = self.graph.weights[src]
        return self.ref(src, index)

    def const_of(self, node: TfjsNode, k: int) -> np.ndarray:
        """Value of input ``k`` when it is a Const node (attributes such as perm/axis/paddings must
        be)."""
        src, index = node.inputs[k]
        if self.by_name[src].op != "Const" or index != 0:
            raise UnsupportedOpError(
                f"{node.op} {node.name}: input {k} ({src}) must be a constant"
            )
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

    def emit(
        self, op: str, inputs: list[str], outputs: list[str] | None = None, n_out: int = 1, **attrs
    ):
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

    # -- conversion -------------------------------------------------------------------------------
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
            raise UnsupportedOpError(
                f"TF ops not supported by this converter: {', '.join(unknown)}"
            )
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
                s.name, onnx_dtype(s.dtype), [d if d >= 0 else None for d in s.shape]
            )
            for s in self.graph.inputs
        ]
        outputs = [
            helper.make_tensor_value_info(
                s.name, onnx_dtype(s.dtype), [d if d >= 0 else None for d in s.shape]
            )
            for s in self.graph.outputs
        ]
        initializers = [numpy_helper.from_array(v, k) for k, v in self.initializers.items()]
        graph = helper.make_graph(self.onnx_nodes, "tfjs_graph", inputs, outputs, initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="mahmr_ros.offline.tfjs_onnx",
        )
        model.ir_version = (
            8  # opset 18 needs IR >= 8; keep it as low as allowed for older onnxruntime
        )
        onnx.checker.check_model(model)
        return model


#: TensorFlow ops this converter implements (``Placeholder`` and ``Const`` included).
SUPPORTED_OPS = tuple(
    sorted(
        {name[3:] for name in dir(TfjsToOnnx) if name.startswith("op_")} | {"Placeholder", "Const"}
    )
)


def convert_tfjs_to_onnx(
    graph: TfjsGraph, input_shapes: dict[str, list[int]] | None = None
) -> onnx.ModelProto:
    """Build an ONNX model (opset 18) computing ``graph``'s signature outputs from its signature
    inputs.

    ONNX inputs and outputs keep the TF node names (``"input"``, ``"Identity"``, ...), dtypes and
    shapes.

    Args:
        graph: the parsed TF.js model.
        input_shapes: optional {input name: shape} replacing the signature's shape, -1 for a free
            dim (for a graph whose ops compute their shapes at run time, e.g. MoveNet MultiPose at
            any multiple of 32).

    Raises:
        UnsupportedOpError: an op (or an op variant, e.g. an ellipsis slice) outside
            :data:`SUPPORTED_OPS`.
    """
    if input_shapes:
        unknown = set(input_shapes) - {spec.name for spec in graph.inputs}
        if unknown:
            raise ValueError(f"input_shapes names unknown inputs: {sorted(unknown)}")
        for spec in graph.inputs:
            spec.shape = list(input_shapes.get(spec.name, spec.shape))
    return TfjsToOnnx(graph).convert()
