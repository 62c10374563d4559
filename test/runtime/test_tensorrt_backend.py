"""TensorRT backend without TensorRT: the module imports, refuses clearly, and its profiles are
consistent."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from mahmr_ros.runtime import tensorrt_backend
from mahmr_ros.runtime.backend import BackendError, create_backend
from mahmr_ros.runtime.export import token_limits

pytestmark = pytest.mark.skipif(
    tensorrt_backend.tensorrt_available(),
    reason="these tests check the behaviour where TensorRT is absent",
)


def test_module_imports_without_tensorrt():
    module = importlib.reload(tensorrt_backend)
    assert hasattr(module, "TensorRTBackend")


def test_asking_to_run_says_tensorrt_is_missing_and_what_to_use(sat_model):
    with pytest.raises(BackendError) as info:
        create_backend(sat_model, backend="tensorrt", precision="fp16", device="cpu")
    message = str(info.value)
    assert "TensorRT is not importable" in message
    assert "'torch'" in message and "'onnxruntime'" in message


def test_build_engines_refuses_before_touching_files(tmp_path):
    with pytest.raises(BackendError, match="TensorRT is not importable"):
        tensorrt_backend.build_engines(tmp_path / "nowhere")


def _manifest(model, padded_hw):
    return {
        "config": dataclasses.asdict(model.cfg),
        "padded_hw": list(padded_hw),
        "token_limits": token_limits(model, padded_hw),
    }


def test_profiles_pin_the_image_and_bound_the_token_axes(sat_model):
    profiles = tensorrt_backend.stage_profiles(
        _manifest(sat_model, (168, 224)), token_bucket=16, patch_bucket=4
    )
    image = profiles["scale_map"]["images"]
    assert image[0] == image[1] == image[2] == (1, 3, 168, 224)
    G1 = (168 // 28) * (224 // 28)
    lo, opt, hi = profiles["encoder"]["tokens"]
    assert (
        lo[1] <= opt[1] <= hi[1] and hi[1] == 5 * G1 + 1
    )  # 5 G1 = 240 is already a multiple of 16
    assert hi[1] - 1 == profiles["decoder"]["memory"][2][1]  # T = 1 + N
    assert profiles["lvl0"]["patches"][2][0] == G1 and profiles["lvl0"]["patches"][2][1:] == (
        3,
        28,
        28,
    )
    for stage in profiles.values():
        for lo, opt, hi in stage.values():
            assert all(a <= b <= c for a, b, c in zip(lo, opt, hi))


def test_profiles_follow_another_camera_size(sat_model):
    profiles = tensorrt_backend.stage_profiles(
        _manifest(sat_model, (168, 224)), padded_hw=(224, 224)
    )
    assert profiles["scale_map"]["images"][0] == (1, 3, 224, 224)
    assert profiles["lvl0"]["patches"][2][0] == 64


def test_profiles_cover_exactly_the_dynamic_inputs_of_the_exported_graphs(export_dir):
    import onnx

    from mahmr_ros.runtime.export import load_manifest

    manifest = load_manifest(export_dir)
    profiles = tensorrt_backend.stage_profiles(manifest, token_bucket=16, patch_bucket=4)
    for stage, entry in manifest["stages"].items():
        graph = onnx.load(str(export_dir / entry["file"])).graph
        dynamic = {
            value.name: value.type.tensor_type.shape.dim
            for value in graph.input
            if any(not d.HasField("dim_value") for d in value.type.tensor_type.shape.dim)
        }
        assert set(profiles[stage]) == set(dynamic), (
            stage
        )  # TensorRT needs a profile for each, no more
        for name, dims in dynamic.items():
            for shape in profiles[stage][name]:
                assert len(shape) == len(dims)
                for size, dim in zip(shape, dims):  # static axes must match the graph exactly
                    assert not dim.HasField("dim_value") or dim.dim_value == size, (stage, name)
