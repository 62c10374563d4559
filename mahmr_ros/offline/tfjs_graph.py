"""Read a TensorFlow.js graph model (``model.json`` + ``.bin`` weight shards) into plain Python and
numpy.

Format (TensorFlow.js "graph-model", as written by the ``tensorflowjs`` converter):

* ``modelTopology``: a TensorFlow ``GraphDef`` in protobuf-JSON form; ``node`` is a list of
  ``{"name", "op", "input": [...], "attr": {...}}``. An input ``"x:1"`` is output 1 of node ``x``;
  ``"^x"`` is a control dependency (ordering only, no data).
* ``weightsManifest``: groups of ``{"paths": [shard files], "weights": [{"name", "shape", "dtype",
  "quantization"?}]}``. A group's shards concatenated hold its weights back to back, in list order.
  ``quantization`` ``{"dtype": "float16"}`` stores IEEE half floats; ``{"dtype": "uint8"|"uint16",
  "min", "scale"}`` stores affine codes (value = code * scale + min). int64 tensors are stored as
  int32.
* ``signature``: the graph's inputs and outputs (``"name:0"`` tensor names with dtype and shape).

Every ``Const`` node's value lives in the manifest under the node's name; no tensor is inlined in
the JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: TensorFlow ``DataType`` enum names (as they appear in the JSON) -> numpy dtype.
TF_DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_HALF": np.float16,
    "DT_DOUBLE": np.float64,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_INT16": np.int16,
    "DT_INT8": np.int8,
    "DT_UINT8": np.uint8,
    "DT_BOOL": np.bool_,
}
#: Manifest dtype names -> numpy dtype of the stored (dequantized) value.
_MANIFEST_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTIZED_DTYPES = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


class TfjsFormatError(ValueError):
    """A ``model.json`` or its weight shards do not match the TF.js graph-model format."""


@dataclass
class TfjsNode:
    """One GraphDef node.

    Attributes:
        name: unique node name.
        op: TensorFlow op type (e.g. ``Conv2D``).
        inputs: data inputs as ``(node_name, output_index)``; control inputs are dropped.
        attr: the node's attributes, protobuf-JSON form (``{"i": "2"}``, ``{"list": {"i":
            [...]}}``, ...).
    """

    name: str
    op: str
    inputs: list[tuple[str, int]]
    attr: dict

    def attr_int(self, key: str, default: int | None = None) -> int:
        if key not in self.attr:
            if default is None:
                raise TfjsFormatError(f"node {self.name} ({self.op}) has no attribute '{key}'")
            return default
        return int(self.attr[key].get("i", 0))

    def attr_float(self, key: str, default: float | None = None) -> float:
        if key not in self.attr:
            if default is None:
                raise TfjsFormatError(f"node {self.name} ({self.op}) has no attribute '{key}'")
            return default
        return float(self.attr[key].get("f", 0.0))

    def attr_bool(self, key: str, default: bool = False) -> bool:
        return bool(self.attr[key].get("b", False)) if key in self.attr else default

    def attr_ints(self, key: str) -> list[int]:
        return [int(v) for v in self.attr.get(key, {}).get("list", {}).get("i", [])]

    def attr_str(self, key: str, default: str = "") -> str:
        import base64

        if key not in self.attr:
            return default
        return base64.b64decode(self.attr[key].get("s", "")).decode()

    def attr_strs(self, key: str) -> list[str]:
        import base64

        return [
            base64.b64decode(s).decode()
            for s in self.attr.get(key, {}).get("list", {}).get("s", [])
        ]

    def attr_dtype(self, key: str):
        """numpy dtype of a ``{"type": "DT_..."}`` attribute."""
        name = self.attr.get(key, {}).get("type", "")
        if name not in TF_DTYPES:
            raise TfjsFormatError(
                f"node {self.name} ({self.op}): unsupported dtype '{name}' in '{key}'"
            )
        return np.dtype(TF_DTYPES[name])


@dataclass
class TfjsTensorSpec:
    """A signature input or output: ``name`` is the node name (``":0"`` stripped), ``shape`` uses
    -1 for unknown dims."""

    name: str
    dtype: np.dtype
    shape: list[int]


@dataclass
class TfjsGraph:
    """A parsed TF.js graph model: nodes in file order, constant values, signature."""

    nodes: list[TfjsNode]
    weights: dict[str, np.ndarray]
    inputs: list[TfjsTensorSpec]
    outputs: list[TfjsTensorSpec]
    meta: dict = field(default_factory=dict)

    def ops(self) -> set[str]:
        return {node.op for node in self.nodes}


def _parse_input(ref: str) -> tuple[str, int] | None:
    if ref.startswith("^"):
        return None  # control dependency: ordering only
    name, _, index = ref.partition(":")
    return name, int(index) if index else 0


def _tensor_spec(key: str, entry: dict) -> TfjsTensorSpec:
    name = entry.get("name", key).split(":")[0]
    dims = entry.get("tensorShape", {}).get("dim", [])
    shape = [int(d.get("size", -1)) for d in dims]
    return TfjsTensorSpec(name, np.dtype(TF_DTYPES.get(entry.get("dtype"), np.float32)), shape)


def _read_weights(model_dir: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        blobs = []
        for rel in group["paths"]:
            shard = model_dir / rel
            if not shard.is_file():
                raise TfjsFormatError(f"weight shard missing: {shard}")
            blobs.append(shard.read_bytes())
        data = b"".join(blobs)
        offset = 0
        for entry in group["weights"]:
            shape = [int(s) for s in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = entry.get("quantization")
            if quant:
                stored = np.dtype(_QUANTIZED_DTYPES[quant["dtype"]])
            else:
                if entry["dtype"] not in _MANIFEST_DTYPES:
                    raise TfjsFormatError(
                        f"weight {entry['name']}: unsupported dtype {entry['dtype']}"
                    )
                stored = np.dtype(_MANIFEST_DTYPES[entry["dtype"]])
            nbytes = count * stored.itemsize
            if offset + nbytes > len(data):
                raise TfjsFormatError(
                    f"weight shards of {model_dir} too short: {entry['name']} needs bytes "
                    f"{offset}..{offset + nbytes}, shards hold {len(data)}"
                )
            raw = np.frombuffer(data, stored, count, offset).reshape(shape)
            offset += nbytes
            if quant and quant["dtype"] == "float16":
                value = raw.astype(np.float32)
            elif quant:  # affine integer code
                value = (
                    raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                ).astype(_MANIFEST_DTYPES[entry["dtype"]])
            else:
                value = raw.copy()
            weights[entry["name"]] = value
        if offset != len(data):
            raise TfjsFormatError(
                f"weight shards of {model_dir}: {len(data) - offset} bytes left unread"
            )
    return weights


def load_tfjs_graph(model_json: str | Path) -> TfjsGraph:
    """Parse a TF.js graph model; weight shards are looked up beside ``model_json``.

    Raises:
        TfjsFormatError: not a graph model, a shard is missing or too short, or a Const has no
            weight.
    """
    model_json = Path(model_json)
    try:
        doc = json.loads(model_json.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TfjsFormatError(f"cannot read TF.js model {model_json}: {err}") from err
    if doc.get("format") != "graph-model" or "modelTopology" not in doc:
        raise TfjsFormatError(
            f"{model_json} is not a TF.js graph model (format={doc.get('format')!r})"
        )
    nodes = []
    for raw in doc["modelTopology"].get("node", []):
        inputs = [
            ref for ref in (_parse_input(r) for r in raw.get("input", [])) if ref is not None
        ]
        nodes.append(TfjsNode(raw["name"], raw["op"], inputs, raw.get("attr", {})))
    weights = _read_weights(model_json.parent, doc.get("weightsManifest", []))
    for node in nodes:
        if node.op == "Const":
            if node.name not in weights:
                raise TfjsFormatError(
                    f"{model_json}: Const {node.name} has no value in the weights manifest"
                )
            weights[node.name] = weights[node.name].astype(node.attr_dtype("dtype"))
    signature = doc.get("signature", {})
    inputs = [_tensor_spec(k, v) for k, v in signature.get("inputs", {}).items()]
    outputs = [_tensor_spec(k, v) for k, v in signature.get("outputs", {}).items()]
    if not inputs:  # signature-less model: every Placeholder is an input
        inputs = [
            TfjsTensorSpec(
                n.name,
                n.attr_dtype("dtype"),
                [
                    int(d.get("size", -1))
                    for d in n.attr.get("shape", {}).get("shape", {}).get("dim", [])
                ],
            )
            for n in nodes
            if n.op == "Placeholder"
        ]
    meta = {k: doc[k] for k in ("generatedBy", "convertedBy") if k in doc}
    return TfjsGraph(nodes, weights, inputs, outputs, meta)
