"""Pinhole projection of camera-frame points to pixels: the one ``project`` of the package."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def project(points_cam, K, min_depth_m: float | None = None):
    """Pinhole projection: ``u = fx x/z + s y/z + cx``, ``v = fy y/z + cy`` (``s`` = the skew ``K[0, 1]``).

    Computed in the dtype of ``points_cam`` (float32 stays float32; integer input becomes float64), K is
    cast to it, so a caller chooses the precision by the points it passes.

    Args:
        points_cam: (*B, ..., 3) metres, OpenCV optical frame (x right, y down, z forward), numpy array
            (or list) or torch tensor.
        K: (3, 3) intrinsics of the image, pixels (last row (0, 0, 1)); or (*B, 3, 3), one camera per
            leading batch entry of ``points_cam``. Array or tensor (moved to the points' device).
        min_depth_m: depths below this are clamped to it before dividing (keeps points at or behind the
            camera finite); None divides by z as it is.

    Returns:
        (*B, ..., 2) pixel coordinates (x right, y down), same kind (numpy / torch) as ``points_cam``.

    Raises:
        ValueError: K is not (..., 3, 3), or has more batch dims than ``points_cam``.
    """
    if isinstance(points_cam, Tensor):
        points = points_cam if points_cam.is_floating_point() else points_cam.double()
        K = torch.as_tensor(K, dtype=points.dtype, device=points.device)
    else:
        points = np.asarray(points_cam)
        points = points if np.issubdtype(points.dtype, np.floating) else points.astype(np.float64)
        K = np.asarray(K, dtype=points.dtype)
    batch_dims = K.ndim - 2
    if K.shape[-2:] != (3, 3) or points.shape[-1:] != (3,) or batch_dims > points.ndim - 1:
        raise ValueError(
            f"[geometry] project needs points (*B, ..., 3) and K (3, 3) or (*B, 3, 3), got points "
            f"{tuple(points.shape)} and K {tuple(K.shape)}"
        )
    # One camera per batch entry: (*B, 3, 3) -> (*B, 1, ..., 1, 3, 3) broadcasts over the point dims.
    K = K.reshape(tuple(K.shape[:-2]) + (1,) * (points.ndim - 1 - batch_dims) + (3, 3))
    z = points[..., 2]
    if min_depth_m is not None:
        z = z.clip(min=min_depth_m)
    x_n, y_n = points[..., 0] / z, points[..., 1] / z  # normalised image coordinates
    u = K[..., 0, 0] * x_n + K[..., 0, 1] * y_n + K[..., 0, 2]
    v = K[..., 1, 1] * y_n + K[..., 1, 2]
    return torch.stack([u, v], -1) if isinstance(points, Tensor) else np.stack([u, v], -1)
