"""Static check that an ONNX graph is something the TensorRT ONNX parser accepts (no TensorRT
needed).

TensorRT cannot be installed in this project's environments (see ``shared/spec/environment.md``),
so the graphs handed to the TensorRT backend are verified here instead: operator support, the
parser's "must be an initializer" restrictions, tensor types, and shapes that are either static or
bounded by an optimization profile. The operator list is the parser's support matrix (onnx-tensorrt
``docs/operators.md``, TensorRT 8.4 table) plus ``LayerNormalization`` (parsed natively since
TensorRT 8.6); it is deliberately conservative: ops TensorRT 10 added later (Mod, Reciprocal,
NonZero ...) are treated as unsupported, so a graph that passes here also parses on older TensorRT
releases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx

TRT_SUPPORTED_OPS = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast
    Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
    DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
    GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
    GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN
    LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization
    LpPool MatMul Max MaxPool Mean Min Mul Neg Not Or Pad ParametricSoftplus Pow PRelu
    QuantizeLinear RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
    Reshape Resize ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu
    Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
    Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample Where Xor
    """.split()
)

# (op, input index) that the parser requires to be a constant (initializer or Constant node
# output).
CONSTANT_INPUTS = {
    ("Conv", 1): "weights W",
    ("ConvTranspose", 1): "weights W",
    ("Slice", 3): "axes",
    ("Squeeze", 1): "axes",
    ("Unsqueeze", 1): "axes",
    ("TopK", 1): "K",
    ("CumSum", 1): "axis",
}

# TensorRT has no float64 (it would be cast down with clamping) and no string/complex tensors.
UNSUPPORTED_TYPES = {
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.STRING: "string",
    onnx.TensorProto.COMPLEX64: "complex64",
    onnx.TensorProto.COMPLEX128: "complex128",
}

# Resize modes the parser handles (cubic is not in the support matrix used here).
RESIZE_MODES = {b"nearest", b"linear"}


@dataclass
class TrtCheckReport:
    """Result of ``check_tensorrt_compatible``; ``ok`` when ``problems`` is empty."""

    ops: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _iter_nodes(graph: onnx.GraphProto):
    """All nodes, including those of If/Loop/Scan subgraphs."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g)
            for sub in attr.graphs:
                yield from _iter_nodes(sub)


def check_tensorrt_compatible(
    model: onnx.ModelProto, dynamic_dims: Mapping[str, Mapping[int, str]] | None = None
) -> TrtCheckReport:
    """Check an ONNX model against TensorRT's ONNX parser rules.

    Args:
        model: the loaded ONNX model.
        dynamic_dims: graph input name -> {axis: symbol} of the axes an optimization profile
            bounds; every other input axis must be static. None skips the input-shape check.

    Returns:
        The report; ``problems`` names each op, node and input at fault.
    """
    report = TrtCheckReport()
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    constants |= {
        out for node in _iter_nodes(graph) if node.op_type == "Constant" for out in node.output
    }
    for node in _iter_nodes(graph):
        if node.domain not in ("", "ai.onnx"):
            report.problems.append(
                f"node {node.name!r}: custom-domain op {node.domain}::{node.op_type}"
            )
            continue
        report.ops[node.op_type] = report.ops.get(node.op_type, 0) + 1
        if node.op_type not in TRT_SUPPORTED_OPS:
            report.problems.append(
                f"node {node.name!r}: op {node.op_type} is not supported by TensorRT"
            )
        for (op, index), what in CONSTANT_INPUTS.items():
            if node.op_type == op and len(node.input) > index and node.input[index]:
                if node.input[index] not in constants:
                    report.problems.append(
                        f"node {node.name!r}: {op} input {what} must be a constant for TensorRT"
                    )
        if node.op_type == "Resize":
            mode = next((a.s for a in node.attribute if a.name == "mode"), b"nearest")
            if mode not in RESIZE_MODES:
                report.problems.append(
                    f"node {node.name!r}: Resize mode {mode.decode()} unsupported"
                )
    typed = list(graph.input) + list(graph.output) + list(graph.value_info)
    for value in typed:
        elem = value.type.tensor_type.elem_type
        if elem in UNSUPPORTED_TYPES:
            report.problems.append(
                f"tensor {value.name!r}: type {UNSUPPORTED_TYPES[elem]} unsupported"
            )
    for init in graph.initializer:
        if init.data_type in UNSUPPORTED_TYPES:
            report.problems.append(
                f"initializer {init.name!r}: type {UNSUPPORTED_TYPES[init.data_type]}"
            )
    if dynamic_dims is not None:
        for value in graph.input:
            allowed = dynamic_dims.get(value.name, {})
            for axis, dim in enumerate(value.type.tensor_type.shape.dim):
                if dim.HasField("dim_value") and dim.dim_value > 0:
                    continue
                if axis not in allowed:
                    symbol = dim.dim_param or "?"
                    report.problems.append(
                        f"input {value.name!r} axis {axis} ({symbol}) is dynamic but no "
                        "optimization profile bounds it"
                    )
    return report
