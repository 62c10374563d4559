"""Torch backend: fp32 equals eager; CPU bf16 autocast stays close to fp32 and returns float32."""

from __future__ import annotations

import pytest
import torch

from mahmr_ros.runtime.backend import BackendError
from mahmr_ros.runtime.torch_backend import Float32Head, TorchBackend, TorchStageRunner, graph_key


def test_fp32_backend_equals_eager(sat_model, sat_images):
    backend = TorchBackend(sat_model, device="cpu", precision="fp32")
    image, hw = sat_images[2]
    with torch.no_grad():
        eager = sat_model(image, hw)
    out = backend(image, hw)
    for key in ("pred_confs", "pred_boxes", "pred_rotmats", "pred_transl", "pred_fov"):
        torch.testing.assert_close(out[key], eager[key], atol=1e-4, rtol=1e-4)
    assert backend.timings_ms["encoder"] > 0


def test_cpu_bf16_autocast_is_close_to_fp32(sat_model, sat_images):
    fp32 = TorchBackend(sat_model, device="cpu", precision="fp32")
    bf16 = TorchBackend(sat_model, device="cpu", precision="bf16")
    # Image 1 has scale-map values far from the SAT thresholds, so both precisions select the same
    # tokens; bf16 has an 8-bit mantissa (~4e-3 relative), accumulated over a 5-block encoder and 2
    # decoder layers.
    image, hw = sat_images[1]
    ref, out = fp32(image, hw), bf16(image, hw)
    assert torch.equal(out["sat"]["hr_cells"], ref["sat"]["hr_cells"])
    for key in ("pred_confs", "pred_boxes", "pred_rotmats", "pred_betas", "pred_transl"):
        assert out[key].dtype == torch.float32
        assert torch.isfinite(out[key]).all()
        torch.testing.assert_close(out[key], ref[key], atol=5e-2, rtol=5e-2, msg=key)
    assert not torch.equal(out["pred_boxes"], ref["pred_boxes"])  # bf16 really ran


def test_fp16_on_cpu_is_refused(sat_model):
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        TorchBackend(sat_model, device="cpu", precision="fp16")


def test_reduced_precision_casts_a_private_copy_once(sat_model):
    backend = TorchBackend(sat_model, device="cpu", precision="bf16")
    assert sat_model.feature_proj.weight.dtype == torch.float32  # the caller's model is untouched
    copy = backend.runner.model
    assert copy is not sat_model
    assert copy.feature_proj.weight.dtype == torch.bfloat16
    assert copy.encoder.norm.weight.dtype == torch.float32  # norms stay float32
    assert copy.encoder_patch_proj[0].weight.dtype == torch.bfloat16
    for head in (
        copy.cam_head,
        copy.scale_head,
        copy.pose_head[0],
        copy.decoder.decoder.bbox_embed[1],
    ):
        assert isinstance(head, Float32Head) and head.head.layers[0].weight.dtype == torch.float32


def test_bf16_outputs_are_not_rounded_to_bf16(sat_model, sat_images):
    """The output heads run in float32: their values carry more precision than bf16's 8-bit
    mantissa (the camera scale rounded to bf16 alone put ~1 cm of depth error on the full-size
    network)."""
    image, hw = sat_images[1]
    out = TorchBackend(sat_model, device="cpu", precision="bf16")(image, hw)
    for key in ("pred_cam", "pred_boxes", "pred_betas", "pred_confs"):
        assert not torch.equal(out[key], out[key].bfloat16().float()), key
    scale_map = out["sat"]["scale_map"]
    assert not torch.equal(scale_map, scale_map.bfloat16().float())


def test_graph_path_shapes_bucketed_and_always_masked_match_eager(sat_model, sat_images):
    """What the CUDA-graph path feeds its graphs (token axis padded to 64, patches to 16, masks
    always passed), run eagerly on the CPU: the padding must not change any output."""
    backend = TorchBackend(
        sat_model, device="cpu", precision="fp32", token_bucket=64, patch_bucket=16
    )
    backend.runner.requires_masks = True  # as with cuda_graphs=True
    for image, hw in sat_images[1:3]:
        with torch.no_grad():
            eager = sat_model(image, hw)
        out = backend(image, hw)
        assert torch.equal(out["sat"]["hr_cells"], eager["sat"]["hr_cells"])
        for key in ("pred_confs", "pred_boxes", "pred_rotmats", "pred_transl"):
            torch.testing.assert_close(out[key], eager[key], atol=1e-4, rtol=1e-4, msg=key)


def test_graph_key_distinguishes_shape_dtype_and_missing_inputs():
    a = torch.zeros(1, 64, 8)
    assert graph_key((a, None)) == graph_key((torch.ones(1, 64, 8), None))  # values do not matter
    assert graph_key((a, None)) != graph_key((torch.zeros(1, 128, 8), None))
    assert graph_key((a, None)) != graph_key((a.half(), None))
    assert graph_key((a, None)) != graph_key((a, torch.ones(1, 64, dtype=torch.bool)))


def test_cuda_graphs_need_cuda_and_exclude_compile(sat_model):
    with pytest.raises(BackendError, match="cuda_graphs needs a CUDA device"):
        TorchBackend(sat_model, device="cpu", precision="fp32", cuda_graphs=True)
    with pytest.raises(BackendError, match="compile or cuda_graphs"):
        TorchStageRunner(sat_model, torch.device("cuda"), "fp32", compile=True, cuda_graphs=True)


def test_upload_is_a_no_op_on_the_cpu(sat_model, sat_images):
    backend = TorchBackend(sat_model, device="cpu", precision="fp32")
    image, _ = sat_images[0]
    assert backend.upload(image) is image  # no pinned staging without CUDA
