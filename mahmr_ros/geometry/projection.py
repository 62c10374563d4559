"""Pinhole camera: ``project`` (camera metres -> pixels) and its inverse ``unproject``; numpy,
torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def project(points_cam, K, min_depth_m: float | None = None):
    """Pinhole projection: ``u = fx x/z + s y/z + cx``, ``v = fy y/z + cy`` (``s`` = the skew
    ``K[0, 1]``).

    Computed in the dtype of ``points_cam`` (float32 stays float32; integer input becomes float64),
    K is cast to it, so a caller chooses the precision by the points it passes.

    Args:
        points_cam: (*B, ..., 3) metres, OpenCV optical frame (x right, y down, z forward), numpy
            array (or list) or torch tensor.
        K: (3, 3) intrinsics of the image, pixels (last row (0, 0, 1)); or (*B, 3, 3), one camera
            per leading batch entry of ``points_cam``. Array or tensor (moved to the points'
            device).
        min_depth_m: depths below this are clamped to it before dividing (keeps points at or behind
            the camera finite); None divides by z as it is.

    Returns:
        (*B, ..., 2) pixel coordinates (x right, y down), same kind (numpy / torch) as
        ``points_cam``.

    Raises:
        ValueError: K is not (..., 3, 3), or has more batch dims than ``points_cam``.
    """
    points, K = _with_camera(points_cam, K, "project", "points")
    z = points[..., 2]
    if min_depth_m is not None:
        z = z.clip(min=min_depth_m)
    x_n, y_n = points[..., 0] / z, points[..., 1] / z  # normalised image coordinates
    u = K[..., 0, 0] * x_n + K[..., 0, 1] * y_n + K[..., 0, 2]
    v = K[..., 1, 1] * y_n + K[..., 1, 2]
    return _stack(points, [u, v])


def unproject(uv_px, K, depth_m=1.0):
    """Inverse of ``project``: pixels at given depths -> camera-frame points.

    Args:
        uv_px: (*B, ..., 2) pixels (x right, y down), numpy array (or list) or torch tensor;
            computed in its dtype as in ``project``.
        K: (3, 3) or (*B, 3, 3) intrinsics, as in ``project``.
        depth_m: z of each point, metres: a scalar or an array broadcastable to (*B, ...). The
            default 1 gives each pixel's viewing ray scaled to z = 1.

    Returns:
        (*B, ..., 3) metres, OpenCV optical frame, same kind as ``uv_px``; ``project`` maps them
        back.
    """
    uv, K = _with_camera(uv_px, K, "unproject", "pixels")
    y_n = (uv[..., 1] - K[..., 1, 2]) / K[..., 1, 1]
    x_n = (uv[..., 0] - K[..., 0, 2] - K[..., 0, 1] * y_n) / K[..., 0, 0]
    ones = torch.ones_like(x_n) if isinstance(x_n, Tensor) else np.ones_like(x_n)
    return _stack(uv, [x_n * depth_m, y_n * depth_m, ones * depth_m])


def _with_camera(values, K, name: str, what: str) -> tuple:
    """``values`` (points (..., 3) or pixels (..., 2)) as floats and K in their dtype, shaped to
    broadcast."""
    if isinstance(values, Tensor):
        values = values if values.is_floating_point() else values.double()
        K = torch.as_tensor(K, dtype=values.dtype, device=values.device)
    else:
        values = np.asarray(values)
        values = values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)
        K = np.asarray(K, dtype=values.dtype)
    last_dim = 3 if what == "points" else 2
    batch_dims = K.ndim - 2
    if K.shape[-2:] != (3, 3) or values.shape[-1:] != (last_dim,) or batch_dims > values.ndim - 1:
        raise ValueError(
            f"[geometry] {name} needs {what} (*B, ..., {last_dim}) and K (3, 3) or (*B, 3, 3), "
            f"got {what} {tuple(values.shape)} and K {tuple(K.shape)}"
        )
    # One camera per batch entry: (*B, 3, 3) -> (*B, 1, ..., 1, 3, 3) broadcasts over the point
    # dims.
    return values, K.reshape(tuple(K.shape[:-2]) + (1,) * (values.ndim - 1 - batch_dims) + (3, 3))


def _stack(like, columns: list):
    return torch.stack(columns, -1) if isinstance(like, Tensor) else np.stack(columns, -1)
