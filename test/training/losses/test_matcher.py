"""Hungarian matching costs on hand-worked cases."""

from __future__ import annotations

import math

import torch

from training.losses.matcher import HungarianMatcher, box_cxcywh_to_xyxy, generalized_box_iou


def test_giou_hand_cases():
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [4.0, 0, 5, 1]])
    g = generalized_box_iou(a, b)[0]
    assert math.isclose(g[0].item(), 1 / 7 - (9 - 7) / 9, rel_tol=1e-6)
    assert math.isclose(g[1].item(), 0 - (10 - 5) / 10, rel_tol=1e-6)
    assert torch.allclose(
        box_cxcywh_to_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.4])), torch.tensor([0.4, 0.3, 0.6, 0.7])
    )


def test_keypoint_cost_is_the_mean_abs_difference_over_visible_entries():
    m = HungarianMatcher(cost_conf=0, cost_bbox=0, cost_giou=0, cost_kpts=1, input_size=100)
    gt = torch.zeros(1, 22, 2)
    pred = torch.zeros(1, 22, 2)
    pred[0, 0] = torch.tensor([10.0, 30.0])  # visible joint: |0.1| + |0.3|
    pred[0, 1] = torch.tensor([90.0, 90.0])  # invisible joint: ignored
    mask = torch.ones(1, 22, dtype=torch.bool)
    mask[0, 1] = False
    box = torch.tensor([[0.5, 0.5, 0.1, 0.1]])
    cost = m.cost_matrix(torch.tensor([0.5]), box, pred, box, gt, mask)
    assert math.isclose(cost.item(), 0.4 / 42, rel_tol=1e-5)


def test_assignment_follows_the_boxes_and_prefers_confident_queries():
    m = HungarianMatcher(input_size=100)
    gt_boxes = torch.tensor([[0.2, 0.2, 0.1, 0.2], [0.7, 0.7, 0.2, 0.2]])
    pred_boxes = torch.tensor([[0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1], [0.2, 0.2, 0.1, 0.2]])
    j2d = torch.zeros(3, 45, 2)
    gt_j2d = torch.zeros(2, 45, 2)
    layer = {"pred_confs": torch.tensor([[0.9, 0.9, 0.9]]), "pred_boxes": pred_boxes[None]}
    target = {"boxes": gt_boxes, "j2ds": gt_j2d, "j2ds_mask": torch.ones(2, 45, dtype=torch.bool)}
    ((q, g),) = m(layer, j2d[None], [target])
    assert dict(zip(g.tolist(), q.tolist(), strict=True)) == {0: 2, 1: 0}
    # two identical queries on GT 0: the confident one wins
    layer = {"pred_confs": torch.tensor([[0.1, 0.9]]), "pred_boxes": pred_boxes[[2, 2]][None]}
    target = {k: v[:1] for k, v in target.items()}
    ((q, g),) = m(layer, j2d[None, :2], [target])
    assert q.tolist() == [1]
    ((q, g),) = m(layer, j2d[None, :2], [{k: v[:0] for k, v in target.items()}])
    assert len(q) == 0
