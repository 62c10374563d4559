"""ONNX export of every stage (tiny config): onnx.checker, TensorRT parser rules, profile-bounded
axes, and onnxruntime parity with the eager network on images with different token counts."""

from __future__ import annotations

import json

import onnx
import pytest
import torch

from mahmr_ros.runtime.backend import BackendError
from mahmr_ros.runtime.export import export_stages, token_limits, verify_export
from mahmr_ros.runtime.onnx_backend import OnnxBackend
from mahmr_ros.runtime.stages import STAGE_NAMES
from mahmr_ros.runtime.trt_ops import TRT_SUPPORTED_OPS

# onnxruntime vs eager torch, fp32: fused kernels change reduction order only (observed < 1e-5).
ATOL = 1e-4


def test_every_stage_passes_checker_and_tensorrt_rules(export_dir):
    problems = verify_export(export_dir)
    assert set(problems) == set(STAGE_NAMES)
    assert problems == {name: [] for name in STAGE_NAMES}
    for name in STAGE_NAMES:
        model = onnx.load(str(export_dir / f"{name}.onnx"))
        ops = {node.op_type for node in model.graph.node}
        assert ops <= TRT_SUPPORTED_OPS, ops - TRT_SUPPORTED_OPS
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_only_the_token_and_image_axes_are_dynamic(sat_model, export_dir):
    manifest = json.loads((export_dir / "manifest.json").read_text())
    dynamic = {}
    for name in STAGE_NAMES:
        model = onnx.load(str(export_dir / manifest["stages"][name]["file"]))
        for value in model.graph.input:
            for axis, dim in enumerate(value.type.tensor_type.shape.dim):
                if not dim.HasField("dim_value"):
                    dynamic[(name, value.name, axis)] = True
    expected = {
        (stage, inp, int(axis))
        for stage, entry in manifest["stages"].items()
        for inp, axes in entry["dynamic"].items()
        for axis in axes
    }
    assert set(dynamic) == expected
    assert manifest["token_limits"] == {
        k: list(v) for k, v in token_limits(sat_model, (168, 224)).items()
    }


def test_onnxruntime_matches_eager_on_different_token_counts(sat_model, sat_images, export_dir):
    backend = OnnxBackend(sat_model, export_dir=export_dir)
    counts = set()
    for image, hw in sat_images:
        with torch.no_grad():
            eager = sat_model(image, hw)
        out = backend(image, hw)
        counts.add(int(out["sat"]["num_tokens"][0]))
        for name, value in eager[
            "sat"
        ].items():  # masks and counts exact, the scale map within ATOL
            tol = ATOL if value.is_floating_point() else 0
            torch.testing.assert_close(out["sat"][name], value, atol=tol, rtol=tol, msg=name)
        for key in backend.runner.decoder_outputs:
            torch.testing.assert_close(out[key], eager[key], atol=ATOL, rtol=ATOL, msg=key)
    assert len(counts) >= 4


def test_onnxruntime_rejects_an_export_of_other_weights(sat_model_factory, export_dir):
    other = sat_model_factory(seed=1)
    with pytest.raises(
        BackendError, match="other weights"
    ):  # a RuntimeError: auto falls back to eager
        OnnxBackend(other, export_dir=export_dir)


def test_onnxruntime_refuses_reduced_precision(sat_model, export_dir):
    with pytest.raises(BackendError, match="bf16"):
        OnnxBackend(sat_model, precision="bf16", export_dir=export_dir)


def test_verify_reports_modified_and_broken_graphs(export_dir, tmp_path):
    for path in export_dir.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    decoder = onnx.load(str(tmp_path / "decoder.onnx"))
    decoder.doc_string = "edited after export"
    onnx.save(decoder, str(tmp_path / "decoder.onnx"))
    (tmp_path / "lvl0.onnx").write_bytes(b"not a protobuf")
    problems = verify_export(tmp_path)
    assert any("sha256" in p for p in problems["decoder"])
    assert any("not a readable ONNX file" in p for p in problems["lvl0"])
    assert problems["encoder"] == []


def test_export_rejects_bad_arguments(sat_model, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_stages(sat_model, tmp_path, padded_hw=(168, 224), opset=16)
    with pytest.raises(ValueError, match="multiples of 56"):
        export_stages(sat_model, tmp_path, padded_hw=(100, 224))
    with pytest.raises(ValueError, match="unknown stage"):
        export_stages(sat_model, tmp_path, padded_hw=(168, 224), stages=("nope",))


def test_default_export_dir_is_per_weights(sat_model, sat_model_factory, monkeypatch, tmp_path):
    from mahmr_ros.runtime.export import default_export_dir

    monkeypatch.setenv("MAHMR_ONNX_CACHE", str(tmp_path))
    here = default_export_dir(sat_model)
    assert here.parent == tmp_path and here == default_export_dir(sat_model)
    assert default_export_dir(sat_model_factory(seed=1)) != here


def test_onnxruntime_serves_other_input_sizes_than_exported(sat_model, export_dir):
    backend = OnnxBackend(sat_model, export_dir=export_dir)  # exported with padded_hw (168, 224)
    gen = torch.Generator().manual_seed(5)
    for hw in ((224, 168), (112, 224), (224, 224)):
        image = torch.randn(1, 3, *hw, generator=gen)
        resized = torch.tensor([list(hw)])
        with torch.no_grad():
            eager = sat_model(image, resized)
        out = backend(image, resized)
        assert torch.equal(out["sat"]["hr_cells"], eager["sat"]["hr_cells"])
        torch.testing.assert_close(out["pred_boxes"], eager["pred_boxes"], atol=ATOL, rtol=ATOL)
        torch.testing.assert_close(out["pred_transl"], eager["pred_transl"], atol=ATOL, rtol=ATOL)


def test_unwritable_export_dir_is_a_backend_error(sat_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BackendError, match="set export_dir or MAHMR_ONNX_CACHE") as info:
        OnnxBackend(sat_model, export_dir=blocker / "onnx")
    assert isinstance(info.value, RuntimeError)


def test_onnxruntime_backend_leaves_the_callers_model_alone(sat_model, export_dir, sat_images):
    from mahmr_ros.runtime.torch_backend import TorchBackend

    torch_backend = TorchBackend(sat_model, device="cpu")
    before = {k: v.clone() for k, v in sat_model.state_dict().items()}
    OnnxBackend(sat_model, export_dir=export_dir)
    after = sat_model.state_dict()
    assert all(
        torch.equal(before[k], after[k]) and after[k].device == before[k].device for k in before
    )
    torch_backend(*sat_images[0])  # still usable
