"""Axis-aligned boxes: IoU, generalised IoU and the centre-size -> corner conversion (numpy or
torch).

Boxes are ``xyxy`` = (x1, y1, x2, y2) with x1 <= x2, y1 <= y2; a box with x2 < x1 or y2 < y1 has
zero area. The IoU functions broadcast ``a`` against ``b`` like any element-wise operation: two
(N, 4) give N values, ``box_iou(a[:, None], b[None])`` gives the (M, N) matrix of every pair.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Smallest union / hull area divided by (boxes of zero area give IoU 0, not NaN).
_MIN_AREA = 1e-12


def box_iou(a, b):
    """Intersection over union of boxes.

    Args:
        a: (..., 4) xyxy, any unit (pixels, normalised), numpy array (or list) or torch tensor.
        b: (..., 4) xyxy, same unit, broadcastable against ``a``.

    Returns:
        (...) IoU in [0, 1], 0 where both boxes are empty: a tensor, or a float64 array (a numpy
        scalar, a subclass of float, for two single boxes).
    """
    a, b = _as_boxes(a, b)
    inter, union = _intersection_union(a, b)
    return _scalar(inter / union.clip(min=_MIN_AREA))


def generalized_box_iou(a, b):
    """Generalised IoU (Rezatofighi et al. 2019): IoU - (hull - union) / hull, in [-1, 1].

    Args:
        a, b: (..., 4) xyxy, broadcastable against each other (see ``box_iou``).

    Returns:
        (...) GIoU: a tensor or a float64 array.
    """
    a, b = _as_boxes(a, b)
    inter, union = _intersection_union(a, b)
    xp = torch if isinstance(a, Tensor) else np
    hull_wh = (xp.maximum(a[..., 2:], b[..., 2:]) - xp.minimum(a[..., :2], b[..., :2])).clip(min=0)
    hull = hull_wh[..., 0] * hull_wh[..., 1]
    return _scalar(inter / union.clip(min=_MIN_AREA) - (hull - union) / hull.clip(min=_MIN_AREA))


def box_cxcywh_to_xyxy(boxes):
    """(..., 4) (cx, cy, w, h) -> (..., 4) (x1, y1, x2, y2), same unit; tensor or array in, same
    out."""
    center, size = boxes[..., :2], boxes[..., 2:]
    if isinstance(boxes, Tensor):
        return torch.cat([center - size / 2, center + size / 2], -1)
    return np.concatenate([center - size / 2, center + size / 2], -1)


def _as_boxes(a, b) -> tuple:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        like = a if isinstance(a, Tensor) else b
        return torch.as_tensor(a, device=like.device), torch.as_tensor(b, device=like.device)
    return np.asarray(a, np.float64), np.asarray(b, np.float64)


def _intersection_union(a, b) -> tuple:
    """Areas of the intersection and of the union of broadcast box pairs."""
    xp = torch if isinstance(a, Tensor) else np
    inter_wh = (xp.minimum(a[..., 2:], b[..., 2:]) - xp.maximum(a[..., :2], b[..., :2])).clip(
        min=0
    )
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    wh_a = (a[..., 2:] - a[..., :2]).clip(min=0)
    wh_b = (b[..., 2:] - b[..., :2]).clip(min=0)
    return inter, wh_a[..., 0] * wh_a[..., 1] + wh_b[..., 0] * wh_b[..., 1] - inter


def _scalar(values):
    """A 0-d numpy result as a numpy scalar (usable as a float); anything else unchanged."""
    return values[()] if isinstance(values, np.ndarray) else values
