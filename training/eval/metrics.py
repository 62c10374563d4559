"""Benchmark building blocks: similarity (Procrustes) alignment, joint/vertex errors, 2D matching,
F1.

All functions are numpy, metres in / metres out unless a name says ``_mm``. The benchmark modules
(``relative_human.py``, ``benchmarks.py``) combine them following spec mahmr_model §6.
"""

from __future__ import annotations

import numpy as np

from mahmr_ros.geometry import box_iou


def similarity_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-align ``pred`` to ``gt`` with the best similarity transform s R x + t (Umeyama
    1991).

    Args:
        pred: (..., J, 3) points.
        gt: (..., J, 3) points, same shape.

    Returns:
        (..., J, 3) aligned prediction. R is a proper rotation (det +1): the reflection case is
        corrected by flipping the sign of the smallest singular direction.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    mu_p, mu_g = pred.mean(-2, keepdims=True), gt.mean(-2, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    cov = np.swapaxes(g, -1, -2) @ p  # (..., 3, 3) sum_j g_j p_j^T
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones_like(S)
    D[..., -1] = d
    R = U @ (D[..., :, None] * Vt)  # U diag(D) V^T
    var_p = (p**2).sum((-1, -2))
    scale = (S * D).sum(-1) / np.maximum(var_p, 1e-12)
    return scale[..., None, None] * (p @ np.swapaxes(R, -1, -2)) + mu_g


def joint_errors(
    pred: np.ndarray, gt: np.ndarray, root: int | tuple[int, ...] | None = 0
) -> np.ndarray:
    """Per-joint Euclidean errors after aligning both sets at a root.

    Args:
        pred, gt: (..., J, 3) metres.
        root: joint index (or indices, averaged) used as the origin of both sets; None = no
            alignment.

    Returns:
        (..., J) metres.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if root is not None:
        idx = list(np.atleast_1d(root))
        pred = pred - pred[..., idx, :].mean(-2, keepdims=True)
        gt = gt - gt[..., idx, :].mean(-2, keepdims=True)
    return np.linalg.norm(pred - gt, axis=-1)


def pa_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(..., J) metres per-joint errors after similarity (Procrustes) alignment."""
    return np.linalg.norm(similarity_align(pred, gt) - np.asarray(gt, np.float64), axis=-1)


def keypoint_box(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(4,) x1, y1, x2, y2 extent of (J, 2) points (only ``valid`` ones when given; zeros if
    none)."""
    points = np.asarray(points, np.float64)
    if valid is not None:
        points = points[np.asarray(valid, bool)]
    if len(points) == 0:
        return np.zeros(4)
    return np.concatenate([points.min(0), points.max(0)])


def greedy_match_2d(
    pred_kp: np.ndarray,
    gt_kp: np.ndarray,
    gt_valid: np.ndarray | None = None,
    iou_thresh: float = 0.1,
) -> np.ndarray:
    """Greedy 2D matching used by the official evaluations (spec §6).

    Every (prediction, GT) pair is scored by the mean L2 pixel distance over the GT-visible joints;
    pairs are taken lowest distance first, each prediction and GT at most once, and a pair is
    accepted only if the IoU of the two keypoint boxes (both over the GT-visible joints) is >=
    ``iou_thresh``.

    Args:
        pred_kp: (P, J, 2) predicted joints, pixels.
        gt_kp: (G, J, 2) GT joints, same pixel space and joint layout.
        gt_valid: (G, J) bool GT visibility; None = all visible.
        iou_thresh: minimum keypoint-box IoU (0.1 for 3DPW/AGORA, 0.05 for RelativeHuman).

    Returns:
        (G,) int index of the matched prediction per GT, -1 = missed.
    """
    G, P = len(gt_kp), len(pred_kp)
    match = np.full(G, -1, np.int64)
    if G == 0 or P == 0:  # no people or no detections: every GT is missed
        return match
    pred_kp = np.asarray(pred_kp, np.float64).reshape(P, -1, 2)
    gt_kp = np.asarray(gt_kp, np.float64).reshape(G, -1, 2)
    valid = np.ones(gt_kp.shape[:2], bool) if gt_valid is None else np.asarray(gt_valid, bool)
    dist = np.linalg.norm(pred_kp[None] - gt_kp[:, None], axis=-1)  # (G, P, J)
    counts = valid.sum(1)
    cost = np.where(
        counts[:, None] > 0,
        (dist * valid[:, None]).sum(-1) / np.maximum(counts, 1)[:, None],
        np.inf,
    )
    used = np.zeros(P, bool)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        g, p = divmod(int(flat), P)
        if not np.isfinite(cost[g, p]) or match[g] >= 0 or used[p]:
            continue
        iou = box_iou(keypoint_box(pred_kp[p], valid[g]), keypoint_box(gt_kp[g], valid[g]))
        if iou >= iou_thresh:
            match[g], used[p] = p, True
    return match


def detection_scores(num_gt: int, num_pred: int, num_matched: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = num_matched / num_pred if num_pred else 0.0
    recall = num_matched / num_gt if num_gt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
