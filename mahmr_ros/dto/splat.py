"""Low-resolution z-buffer by scatter-min splatting of points (DTO-Lite's visibility test, spec dto
§10.3).

The CPU path is numpy (``np.minimum.at`` scatter-min): torch's per-operation overhead alone is
about 1.5 ms for this splat on CPU, most of DTO-Lite's 2 ms budget. On another device the splat
runs on the package rasterizer (``mahmr_ros.render.splat_points``) instead; both paths give the
same z-buffer.
"""

from __future__ import annotations

import warnings

import numpy as np

from mahmr_ros.geometry import project

# Depths below this are clamped before projecting (points behind the camera stay finite; they are
# dropped).
MIN_DEPTH_M = 1e-6


def project_points(pts: np.ndarray, K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deprecated: use ``mahmr_ros.geometry.project``. (N, 3) points -> their (u, v) pixels and
    depth z.

    Returns:
        (u, v, z): three (N,) arrays in the points' dtype, pixels and metres (z as given,
        unclamped).
    """
    warnings.warn(
        "mahmr_ros.dto.splat.project_points is deprecated; use mahmr_ros.geometry.project",
        DeprecationWarning,
        stacklevel=2,
    )
    uv = project(pts, K, min_depth_m=MIN_DEPTH_M)
    return uv[:, 0], uv[:, 1], pts[:, 2]


def splat_zbuffer(
    pts: np.ndarray,
    K: np.ndarray,
    image_hw,
    scale: float,
    device: str = "cpu",
    uv_px: np.ndarray | None = None,
) -> tuple:
    """Low-resolution scatter-min z-buffer of points and each point's low-resolution pixel.

    Args:
        pts: (N, 3) float32 camera-frame points, metres.
        K: (3, 3) intrinsics of the image, pixels.
        image_hw: (H, W).
        scale: z-buffer resolution factor r (pixel centres on integers at both resolutions).
        device: "cpu" = numpy; anything else = ``mahmr_ros.render.splat_points`` on that torch
            device.
        uv_px: (N, 2) the points' pixels when the caller has projected them already
            (``project(pts, K, min_depth_m=MIN_DEPTH_M)``); None = project here.

    Returns:
        (zbuf (h*w,) float32 with +inf where empty, lin (N,) int64 pixel index or -1 outside, (h,
        w)).
    """
    H, W = image_hw
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    uv = (
        project(pts, K, min_depth_m=MIN_DEPTH_M) if uv_px is None else uv_px
    )  # (N, 2), float32 like pts
    z = pts[:, 2]
    # Low-resolution pixel centres on integers too: u_r = r (u + 0.5) - 0.5.
    u = np.rint(scale * uv[:, 0] + (0.5 * scale - 0.5)).astype(np.int64)
    v = np.rint(scale * uv[:, 1] + (0.5 * scale - 0.5)).astype(np.int64)
    ok = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    lin = np.where(ok, v * w + u, -1)
    if device == "cpu":
        zbuf = np.full(h * w, np.inf, np.float32)
        np.minimum.at(zbuf, lin[ok], z[ok].astype(np.float32))
    else:
        from mahmr_ros.render import splat_points

        r = splat_points(pts, K, (H, W), scale=scale, device=device)
        zbuf = r.depth_m.reshape(-1).cpu().numpy()
    return zbuf, lin, (h, w)
