import math

import torch

from mahmr_ros.model.heads import MLP, camera_to_translation, clamp_fov, focal_from_fov


def test_focal_from_fov_hand_checked():
    # 60° vertical FoV at 1288 px: 1288 / (2 tan 30°) = 1115.4...(spec §1.2).
    f = focal_from_fov(torch.tensor([math.pi / 3]), torch.tensor([1288.0]))
    assert abs(f.item() - 1115.44) < 0.01
    # 90° at 720 px: 720 / (2 tan 45°) = 360.
    assert (
        abs(focal_from_fov(torch.tensor([math.pi / 2]), torch.tensor([720.0])).item() - 360.0)
        < 1e-3
    )


def test_fov_clamp():
    out = clamp_fov(torch.tensor([0.01, 1.0, 4.0]))
    assert out[0].item() == torch.tensor(0.08).item() and out[1].item() == 1.0
    assert 3.1 < out[2].item() < math.pi


def test_camera_to_translation_hand_checked():
    f = torch.tensor([1115.44])
    cam, transl = camera_to_translation(torch.tensor([[[0.1, -0.2, 0.0]]]), f, 1288)
    s = 1.000001  # 2 sigmoid(0) + 1e-6
    assert torch.allclose(cam[0, 0], torch.tensor([s, 0.1 / s, -0.2 / s]))
    assert abs(transl[0, 0, 2].item() - 2 * 1115.44 / (s * 1288)) < 1e-5  # ~1.732 m
    # The SMPL origin projects to u = cx + 644 c0, v = cy + 644 c1 (spec §1.8).
    u_off = f * transl[0, 0, 0] / transl[0, 0, 2]
    v_off = f * transl[0, 0, 1] / transl[0, 0, 2]
    assert abs(u_off.item() - 64.4) < 1e-3 and abs(v_off.item() + 128.8) < 1e-3


def test_mlp_layers_and_relu():
    mlp = MLP(4, 8, 2, 3)
    assert [tuple(m.weight.shape) for m in mlp.layers] == [(8, 4), (8, 8), (2, 8)]
    x = torch.randn(5, 4)
    h = torch.relu(mlp.layers[1](torch.relu(mlp.layers[0](x))))
    assert torch.allclose(mlp(x), mlp.layers[2](h))
