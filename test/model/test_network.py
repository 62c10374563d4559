import math

import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model, sat


def _run(model, images, resized_hw):
    with torch.no_grad():
        return model(images, resized_hw)


def _flat(out):
    return {k: v for k, v in out.items() if k != "sat"}


def test_output_names_and_shapes(tiny_model, tiny_input):
    out = _run(tiny_model, *tiny_input)
    Q = TINY_OVERRIDES["num_queries"]
    shapes = {k: tuple(v.shape) for k, v in _flat(out).items()}
    assert shapes == {
        "pred_confs": (2, Q), "pred_boxes": (2, Q, 4), "pred_rotmats": (2, Q, 24, 3, 3),
        "pred_betas": (2, Q, 11), "pred_cam": (2, Q, 3), "pred_transl": (2, Q, 3),
        "pred_fov": (2,), "pred_focal": (2,), "pred_intrinsics": (2, 3, 3),
    }  # fmt: skip
    assert out["sat"]["hr_cells"].shape == (2, 8, 6) and out["sat"]["pooled_groups"].shape == (
        2,
        4,
        3,
    )
    assert out["sat"]["hr_cells"].dtype == torch.bool and out["sat"]["num_tokens"].shape == (2,)
    assert all(torch.isfinite(v).all() for v in _flat(out).values())
    assert ((out["pred_confs"] > 0) & (out["pred_confs"] < 1)).all()


def test_camera_follows_fov_and_resized_height(tiny_model, tiny_input):
    out = _run(tiny_model, *tiny_input)
    h = tiny_input[1][:, 0].float()
    assert torch.allclose(out["pred_focal"], h / (2 * torch.tan(out["pred_fov"] / 2)))
    K = out["pred_intrinsics"]
    assert K[1, 0, 2].item() == 84.0 and K[1, 1, 2].item() == 110.0  # (w'/2, h'/2) of image 1
    s = out["pred_cam"][..., 0]
    tz = 2 * out["pred_focal"][:, None] / (s * 224)
    assert torch.allclose(out["pred_transl"][..., 2], tz)
    assert torch.allclose(out["pred_cam"][..., 1:], out["pred_transl"][..., :2])


def test_rotations_are_orthonormal(tiny_model, tiny_input):
    R = _run(tiny_model, *tiny_input)["pred_rotmats"]
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand_as(R), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(R.shape[:-2]), atol=1e-5)


def test_deterministic(tiny_model, tiny_input):
    a, b = _run(tiny_model, *tiny_input), _run(tiny_model, *tiny_input)
    assert all(torch.equal(a[k], b[k]) for k in _flat(a))


def _constructed_scale_maps(B, G1h, G1w):
    """Image 0: all small people; image 1: big people in columns 0-3, background on the right."""
    maps = torch.zeros(B, G1h, G1w, 2)
    maps[0, ..., 0], maps[0, ..., 1] = 0.9, 0.1
    if B > 1:
        maps[1, :, :4, 0], maps[1, :, :4, 1] = 0.8, 0.9
        maps[1, 0, 0] = torch.tensor([0.8, 0.2])
    return maps


@pytest.fixture
def forced_scale_map(tiny_model, monkeypatch):
    """Replace the predicted scale map by ``maps[image index]`` (keyed by the first pixel of each
    image)."""
    table = {}
    original = tiny_model.forward_scale_map

    def patched(images):
        cls1, lvl1, predicted = original(images)
        return cls1, lvl1, torch.stack([table[float(img[0, 0, 0])] for img in images])

    monkeypatch.setattr(tiny_model, "forward_scale_map", patched)
    return table


def test_batch_of_two_equals_single_images_with_different_token_counts(
    tiny_model, tiny_input, forced_scale_map
):
    images, hw = tiny_input
    maps = _constructed_scale_maps(2, 8, 6)
    for b in range(2):
        forced_scale_map[float(images[b, 0, 0, 0])] = maps[b]
    batch = _run(tiny_model, images, hw)
    # Image 0: all 48 cells high-res, no pooled group -> quirk keeps them as lvl1 too: 5 x 48
    # tokens. Image 1: columns 0-3 kept (32 lvl1, one of them high-res -> 31 + 4 lvl0), columns 4-5
    # = 4 pooled groups.
    assert batch["sat"]["num_tokens"].tolist() == [240, 31 + 4 + 4]
    for b in range(2):
        single = _run(tiny_model, images[b : b + 1], hw[b : b + 1])
        for key, value in _flat(single).items():
            assert torch.allclose(value[0], batch[key][b], atol=1e-5, rtol=1e-4), key
        assert torch.equal(single["sat"]["hr_cells"][0], batch["sat"]["hr_cells"][b])


def test_token_sequence_length_matches_num_tokens(tiny_model, tiny_input):
    images, _ = tiny_input
    with torch.no_grad():
        cls1, lvl1, _ = tiny_model.forward_scale_map(images[:1])
        maps = _constructed_scale_maps(2, 8, 6)[1:]
        masks = sat.select_cells(maps)
        plan = sat.plan_tokens(masks.hr_cells[0], masks.pooled_groups[0], masks.keep_lvl1[0])
        feats, cls_out, levels, yx = tiny_model.forward_tokens(images[0], cls1[0], lvl1[0], plan)
    assert len(feats) == masks.num_tokens().item() == 39
    assert levels.tolist().count(0) == 4 and levels.tolist().count(2) == 4
    # lvl0 tokens of cell (0, 0): 14-px cells (0,0), (0,1), (1,0), (1,1) in raster order.
    assert yx[:4].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert cls_out.shape == (64,)


def test_default_config_has_fixed_60_degree_camera():
    torch.manual_seed(0)
    model = build_model({"preset": "default", **TINY_OVERRIDES})
    out = _run(model, torch.zeros(1, 3, 112, 224), torch.tensor([[100, 224]]))
    assert "pred_fov" not in out and out["pred_betas"].shape[-1] == 10
    assert abs(out["pred_focal"].item() - 224 / (2 * math.tan(math.pi / 6))) < 1e-3


def test_bad_input_size_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="multiples of 56"):
        tiny_model(torch.zeros(1, 3, 100, 224), torch.tensor([[100, 224]]))
