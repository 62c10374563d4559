"""DN losses (training.losses.denoising, spec mahmr_model §4.4) against hand-computed values: the
fixed slot -> GT assignment, the N x groups normaliser, the conf target over all DN slots, keys and
weights."""

from __future__ import annotations

import math

import torch

from training.losses.criterion import SetCriterion
from training.losses.denoising import dn_losses, positive_queries, weight_name

GT_BOXES = torch.tensor([[0.3, 0.3, 0.2, 0.4], [0.7, 0.5, 0.2, 0.4]])


def make_dn_layer(groups=2, pad=2):
    """One image, 2 GT, ``groups`` groups: group 0 positives hit the GT boxes, group 1 positives
    are off by 0.1 on every box coordinate; negatives are far away; all confidences 0.5."""
    Q = groups * 2 * pad
    boxes = torch.full((1, groups, 2, pad, 4), 0.9)
    boxes[0, 0, 0] = GT_BOXES
    boxes[0, 1, 0] = GT_BOXES + 0.1
    layer = {
        "pred_confs": torch.full((1, Q), 0.5),
        "pred_boxes": boxes.reshape(1, Q, 4),
        "pred_rotmats": torch.eye(3).expand(1, Q, 24, 3, 3).clone(),
        "pred_poses": torch.zeros(1, Q, 72),
        "pred_betas": torch.zeros(1, Q, 10),
        "pred_transl": torch.tensor([0.0, 0.0, 3.0]).expand(1, Q, 3).clone(),
    }
    for v in layer.values():
        v.requires_grad_(True)
    return layer


def outputs_with(dn_layers, groups=2, pad=2):
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 100], [0, 0, 1]]])
    return {"pred_intrinsics": K, "pred_focal": torch.tensor([100.0]),
            "dn": {"layers": dn_layers, "groups": groups, "pad": pad, "counts": [2]}}  # fmt: skip


def test_weight_names():
    assert weight_name("j2ds_dn.3") == "j2ds" and weight_name("confs_dn") == "confs"
    assert weight_name("depths_mt_dn") == "depths_mt" and weight_name("boxes.0") == "boxes"


def test_positive_queries_pick_the_positive_block_of_every_group():
    layer = {"x": torch.arange(8.0).reshape(1, 8)}  # groups 2, pad 2: [p p n n | p p n n]
    assert positive_queries(layer, 2, 2)["x"].tolist() == [[0.0, 1.0], [4.0, 5.0]]


def test_hand_values_and_normalisers(fake_body, make_target):
    crit = SetCriterion(fake_body, {"confs": 4, "boxes": 2, "poses": 5}, input_size=100)
    targets = [make_target(num_betas=10, boxes=GT_BOXES)]  # 10 betas, as the DN layers
    total, terms = dn_losses(crit, outputs_with([make_dn_layer(), make_dn_layer()]), targets)
    assert set(terms) == {
        f"{n}_dn{s}" for n in ("confs", "boxes", "giou", "poses") for s in ("", ".0")
    }
    # L1 over 2 people x 4 coords x 0.1 (group 1 only), divided by N x groups = 2 x 2.
    assert math.isclose(terms["boxes_dn"].item(), 2 * 4 * 0.1 / 4, rel_tol=1e-5)
    # conf: 4 positive slots (target 1) and 4 other slots (target 0) at p = 0.5, mean over 8, / 2
    # groups.
    pos, neg = 0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)
    assert math.isclose(terms["confs_dn"].item(), (4 * pos + 4 * neg) / 8 / 2, rel_tol=1e-5)
    assert terms["poses_dn"].item() == 0.0
    expected = sum(
        {"confs": 4, "boxes": 2, "giou": 2, "poses": 5}[weight_name(k)] * v
        for k, v in terms.items()
    )
    torch.testing.assert_close(total, expected)
    total.backward()  # gradients reach the DN predictions


def test_no_dn_outputs_give_nothing_and_stage_weights_apply(fake_body, make_target):
    crit = SetCriterion(fake_body, {"confs": 4})
    total, terms = dn_losses(
        crit, {"pred_focal": torch.tensor([100.0])}, [make_target(num_betas=10, boxes=GT_BOXES)]
    )
    assert terms == {} and total.item() == 0.0
    no_aux = SetCriterion(fake_body, {"j2ds": 40, "depths_mt": 0.5}, input_size=100, aux=False)
    _, terms = dn_losses(
        no_aux,
        outputs_with([make_dn_layer(), make_dn_layer()]),
        [make_target(num_betas=10, boxes=GT_BOXES)],
    )
    assert set(terms) == {"j2ds_dn", "depths_mt_dn"}
    assert all(torch.isfinite(v) for v in terms.values())
    # Both groups predict the same depth for the two people (GT gap 0.5 m): log(1 + 0.5) per group.
    assert math.isclose(terms["depths_mt_dn"].item(), math.log(1.5), rel_tol=1e-5)
