"""The training forward's last layer is exactly the inference forward; aux layers and AMP are well
formed."""

from __future__ import annotations

import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model
from training.forward import forward_train


def test_last_layer_equals_the_inference_forward():
    torch.manual_seed(0)
    model = build_model({"preset": "fov_kid", **TINY_OVERRIDES})
    images = torch.randn(2, 3, 168, 224)
    hw = torch.tensor([[168, 224], [150, 224]])
    with torch.no_grad():
        ref = model(images, hw)
        out = forward_train(model, images, hw)
    last = out["layers"][-1]
    assert len(out["layers"]) == model.cfg.dec_layers
    for key in ("pred_confs", "pred_boxes", "pred_rotmats", "pred_betas", "pred_transl"):
        torch.testing.assert_close(last[key], ref[key], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["pred_fov"], ref["pred_fov"])
    torch.testing.assert_close(out["pred_intrinsics"], ref["pred_intrinsics"])
    assert out["scale_map"].shape == (2, 6, 8, 2)
    assert last["pred_poses"].shape == (2, model.cfg.num_queries, 72)


def test_bf16_autocast_keeps_geometry_in_float32():
    torch.manual_seed(0)
    model = build_model({"preset": "fov_kid", **TINY_OVERRIDES}).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = forward_train(model, torch.randn(1, 3, 168, 224), torch.tensor([[168, 224]]))
    layer = out["layers"][0]
    assert (
        layer["pred_rotmats"].dtype == torch.float32
        and layer["pred_transl"].dtype == torch.float32
    )
    R = layer["pred_rotmats"]
    eye = torch.eye(3).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-4, rtol=0)
