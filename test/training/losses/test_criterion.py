"""Loss terms against hand-computed values, and the full criterion's keys, aux layers and
gradients."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses.criterion import SetCriterion, focal_bce, ordinal_layers
from training.smpl_layer import SMPLLayer


def test_focal_bce_hand_value():
    p, t = torch.tensor([0.8, 0.3]), torch.tensor([1.0, 0.0])
    expected = [0.25 * 0.2**2 * -math.log(0.8), 0.75 * 0.3**2 * -math.log(0.7)]
    assert torch.allclose(focal_bce(p, t), torch.tensor(expected), rtol=1e-5)


def test_ordinal_layers():
    assert ordinal_layers(torch.tensor([5.0, 2.0, 2.2, 2.6, 9.0])).tolist() == [2, 0, 0, 1, 3]


def make_layer(B=1, Q=3, S=11, grad=True):
    torch.manual_seed(0)
    layer = {
        "pred_confs": torch.full((B, Q), 0.5),
        "pred_boxes": torch.tensor(
            [[0.3, 0.3, 0.2, 0.4], [0.7, 0.5, 0.2, 0.4], [0.5, 0.5, 0.1, 0.1]]
        )[None]
        .expand(B, Q, 4)
        .clone(),
        "pred_rotmats": torch.eye(3).expand(B, Q, 24, 3, 3).clone(),
        "pred_poses": torch.zeros(B, Q, 72),
        "pred_betas": torch.zeros(B, Q, S),
        "pred_transl": torch.tensor([[0.0, 0, 3], [0.5, 0, 5], [0, 0, 9]])[None]
        .expand(B, Q, 3)
        .clone(),
    }
    if grad:
        for v in layer.values():
            v.requires_grad_(True)
    return layer


def test_relative_metric_and_ordinal_depth_hand_values(fake_body, make_target):
    crit = SetCriterion(fake_body, {"depths_mt": 1, "depths_re": 1})
    layer = make_layer()
    indices = [(torch.tensor([0, 1]), torch.tensor([0, 1]))]
    # pred gap 5 - 3 = 2, GT gap 0.5 -> log(1 + 1.5)
    assert math.isclose(
        crit.loss_depths_mt(layer, indices, [make_target()]).item(), math.log(2.5), rel_tol=1e-6
    )
    far = make_target()
    far["depths"] = torch.tensor([3.0, 4.5])  # GT gap > 1 m: no valid pair
    assert crit.loss_depths_mt(layer, indices, [far]).item() == 0.0
    # GT layers from depths: 3.0 and 3.5 differ by >= 0.3 -> j farther -> softplus(-2)
    assert math.isclose(
        crit.loss_depths_re(layer, indices, [make_target()]).item(),
        math.log1p(math.exp(-2)),
        rel_tol=1e-6,
    )
    same = make_target()
    same["depth_ids"] = torch.tensor([1, 1])
    assert math.isclose(crit.loss_depths_re(layer, indices, [same]).item(), 2.0, rel_tol=1e-6)


def test_fov_loss_weights_overestimates_three_times(fake_body, make_target):
    crit = SetCriterion(fake_body, {"fov": 1})
    t = make_target()  # cy = 100, f_gt = 100 -> phi_gt = pi / 2
    over = crit.loss_fov(torch.tensor([50.0]), [t])
    under = crit.loss_fov(torch.tensor([200.0]), [t])
    assert math.isclose(over.item(), 3 * (2 * math.atan(2) - math.pi / 2) ** 2, rel_tol=1e-6)
    assert math.isclose(under.item(), (2 * math.atan(0.5) - math.pi / 2) ** 2, rel_tol=1e-6)
    assert math.isclose(
        crit.loss_fov(torch.tensor([50.0, 200.0]), [t, t]).item(),
        over.item() + under.item(),
        rel_tol=1e-6,
    )


def test_confidence_mask_follows_detect_all_people(fake_body, make_target):
    crit = SetCriterion(fake_body, {"confs": 1})
    confs = torch.tensor([[0.8, 0.3, 0.3]])
    indices = [(torch.tensor([0]), torch.tensor([0]))]
    t = make_target()
    all_q = crit.loss_confs(confs, indices, [t]).item()
    expected_all = (0.25 * 0.2**2 * -math.log(0.8) + 2 * 0.75 * 0.3**2 * -math.log(0.7)) / 3
    assert math.isclose(all_q, expected_all, rel_tol=1e-5)
    t["detect_all"] = torch.tensor(False)
    assert math.isclose(
        crit.loss_confs(confs, indices, [t]).item(), 0.25 * 0.2**2 * -math.log(0.8), rel_tol=1e-5
    )


WEIGHTS = {"confs": 4, "poses": 5, "betas": 3, "boxes": 2, "j3ds": 8, "j2ds": 40, "depths": 0.5,
           "depths_mt": 0.5, "fov": 0.5, "map_confs": 4, "map_scales": 4}  # fmt: skip


def test_full_criterion_has_every_term_aux_layers_and_gradients(synthetic_smpl, make_target):
    body = SMPLLayer(*synthetic_smpl, num_betas=11)
    crit = SetCriterion(body, WEIGHTS, input_size=224)
    K = torch.tensor([[[100.0, 0, 50], [0, 100, 100], [0, 0, 1]]])
    outputs = {
        "layers": [make_layer(), make_layer()],
        "pred_intrinsics": K,
        "pred_focal": torch.tensor([100.0], requires_grad=True),
        "pred_fov": torch.tensor([1.0]),
        "scale_map": torch.full((1, 2, 2, 2), 0.5, requires_grad=True),
    }
    total, terms = crit(outputs, [make_target()])
    expected = {"confs", "boxes", "giou", "poses", "betas", "j3ds", "j2ds", "depths", "depths_mt",
                "fov", "map_confs", "map_scales"}  # fmt: skip
    assert expected <= set(terms)
    assert {k + ".0" for k in expected - {"fov", "map_confs", "map_scales"}} <= set(terms)
    assert terms["boxes"].item() == pytest.approx(0.0, abs=1e-6)  # matched boxes are exact
    assert torch.isfinite(total)
    total.backward()
    assert outputs["layers"][-1]["pred_transl"].grad.abs().sum() > 0
    assert outputs["layers"][0]["pred_transl"].grad.abs().sum() > 0
    # 2D-only targets drop the 3D terms but keep the 2D ones
    _, terms2d = crit(
        {**outputs, "layers": [make_layer(), make_layer()]}, [make_target(has_3d=False)]
    )
    assert terms2d["poses"].item() == 0.0 and terms2d["j2ds"].item() > 0


def test_images_without_people_only_push_confidences_down(synthetic_smpl, make_target):
    body = SMPLLayer(*synthetic_smpl, num_betas=11)
    crit = SetCriterion(body, WEIGHTS, input_size=224)
    empty = {
        k: (v[:0] if v.ndim and k not in ("scale_map", "resized_hw") else v)
        for k, v in make_target().items()
    }
    outputs = {
        "layers": [make_layer(), make_layer()],
        "pred_intrinsics": torch.tensor([[[100.0, 0, 50], [0, 100, 100], [0, 0, 1]]]),
        "pred_focal": torch.tensor([100.0]),
        "pred_fov": torch.tensor([1.0]),
        "scale_map": torch.full((1, 2, 2, 2), 0.5),
    }
    total, terms = crit(outputs, [empty])
    assert torch.isfinite(total) and terms["confs"] > 0
    assert all(terms[k] == 0 for k in ("boxes", "giou", "j2ds", "poses", "j3ds", "depths_mt"))
