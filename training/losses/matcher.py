"""Hungarian matching of queries to GT people (spec mahmr_model §4.1), one image at a time.

cost(i, j) = w_conf focal_cost(p_i) + w_bbox |b_i - b_j|_1 - w_giou GIoU(b_i, b_j) + w_kpts
kpt_L1(i, j)

with the focal cost alpha (1 - p)^gamma (-log(p + 1e-8)) (alpha 0.25, gamma 2), boxes (cx, cy, w,
h) / input_size and the keypoint cost the mean absolute difference of the first 22 joints' 2D
positions (/ input_size) over the GT-visible entries. Solved with
``scipy.optimize.linear_sum_assignment``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mahmr_ros import geometry
from mahmr_ros.geometry import box_cxcywh_to_xyxy

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
MATCH_JOINTS = 22


def generalized_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Deprecated: pairwise GIoU (N, 4), (M, 4) -> (N, M); use
    ``mahmr_ros.geometry.generalized_box_iou``."""
    warnings.warn(
        "training.losses.matcher.generalized_box_iou is deprecated; use "
        "mahmr_ros.geometry.generalized_box_iou(a[:, None], b[None])",
        DeprecationWarning,
        stacklevel=2,
    )
    return geometry.generalized_box_iou(a[:, None], b[None])


class HungarianMatcher:
    """Optimal one-to-one assignment of queries to GT people.

    Args:
        cost_conf, cost_bbox, cost_giou, cost_kpts: cost weights (official: 1, 1, 1, 20).
        input_size: normaliser of the 2D joints (1288).
    """

    def __init__(
        self,
        cost_conf: float = 1.0,
        cost_bbox: float = 1.0,
        cost_giou: float = 1.0,
        cost_kpts: float = 20.0,
        input_size: int = 1288,
    ) -> None:
        self.weights = (cost_conf, cost_bbox, cost_giou, cost_kpts)
        self.input_size = input_size

    def cost_matrix(
        self,
        confs: Tensor,
        boxes: Tensor,
        j2ds: Tensor,
        gt_boxes: Tensor,
        gt_j2ds: Tensor,
        gt_mask: Tensor,
    ) -> Tensor:
        """(Q, G) matching cost of one image.

        Args:
            confs: (Q,) probabilities.  boxes: (Q, 4) (cx, cy, w, h) / input_size.
            j2ds: (Q, J, 2) predicted joints, resized-image pixels.
            gt_boxes: (G, 4).  gt_j2ds: (G, J, 2) px.  gt_mask: (G, J) bool visible.
        """
        w_conf, w_bbox, w_giou, w_kpts = self.weights
        p = confs.float()
        c_conf = FOCAL_ALPHA * (1 - p) ** FOCAL_GAMMA * -torch.log(p + 1e-8)  # (Q,)
        c_bbox = torch.cdist(boxes.float(), gt_boxes.float(), p=1)
        xyxy, gt_xyxy = box_cxcywh_to_xyxy(boxes.float()), box_cxcywh_to_xyxy(gt_boxes.float())
        c_giou = -geometry.generalized_box_iou(xyxy[:, None], gt_xyxy[None])  # (Q, G)
        n = MATCH_JOINTS
        pred = j2ds[:, None, :n].float() / self.input_size  # (Q, 1, n, 2)
        gt = gt_j2ds[None, :, :n].float() / self.input_size  # (1, G, n, 2)
        mask = gt_mask[None, :, :n, None].float()
        c_kpts = ((pred - gt).abs() * mask).sum((-1, -2)) / (mask.sum((-1, -2)) * 2 + 1e-6)
        return w_conf * c_conf[:, None] + w_bbox * c_bbox + w_giou * c_giou + w_kpts * c_kpts

    @torch.no_grad()
    def __call__(
        self, layer: dict, pred_j2ds: Tensor, targets: list[dict]
    ) -> list[tuple[Tensor, Tensor]]:
        """Match every image of a batch.

        Args:
            layer: one decoder layer's predictions (``forward_train``): ``pred_confs`` (B, Q),
                ``pred_boxes`` (B, Q, 4).
            pred_j2ds: (B, Q, J, 2) projected predicted joints, resized px.
            targets: per image dicts with ``boxes`` (G, 4), ``j2ds`` (G, J, 2), ``j2ds_mask`` (G,
                J).

        Returns:
            Per image (query indices, GT indices), int64 tensors of equal length min(Q, G).
        """
        costs = []
        for b, t in enumerate(targets):
            if len(t["boxes"]) == 0:
                continue
            costs.append(
                self.cost_matrix(
                    layer["pred_confs"][b],
                    layer["pred_boxes"][b],
                    pred_j2ds[b],
                    t["boxes"],
                    t["j2ds"],
                    t["j2ds_mask"],
                )
            )
        # One device -> host copy for the whole batch (the assignment itself runs in scipy).
        flat = torch.cat(costs, dim=1) if costs else None
        flat = None if flat is None else torch.nan_to_num(flat, nan=1e6, posinf=1e6).cpu().numpy()
        out, start = [], 0
        for t in targets:
            G = len(t["boxes"])
            if G == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                out.append((empty, empty))
                continue
            rows, cols = linear_sum_assignment(flat[:, start : start + G])
            start += G
            out.append(
                (
                    torch.as_tensor(rows, dtype=torch.int64),
                    torch.as_tensor(np.asarray(cols), dtype=torch.int64),
                )
            )
        return out
