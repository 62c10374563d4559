"""Low-resolution z-buffer by scatter-min splatting of points (DTO-Lite's visibility test, spec dto §10.3).

The CPU path is numpy (``np.minimum.at`` scatter-min): torch's per-operation overhead alone is about
1.5 ms for this splat on CPU, most of DTO-Lite's 2 ms budget. On another device the splat runs on the
package rasterizer (``mahmr_ros.render.splat_points``) instead; both paths give the same z-buffer.
"""

from __future__ import annotations

import numpy as np


def project_points(pts: np.ndarray, K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float pixel coordinates (u, v) and depth z of points (python-float intrinsics keep float32).

    Args:
        pts: (N, 3) camera-frame points, metres.
        K: (3, 3) intrinsics, pixels (the skew term K[0, 1] is honoured).

    Returns:
        (u, v, z): three (N,) arrays, pixels and metres.
    """
    fx, fy, cx, cy, skew = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), float(K[0, 1])
    z = pts[:, 2]
    inv = 1.0 / np.maximum(z, np.float32(1e-6))
    x, y = pts[:, 0] * inv, pts[:, 1] * inv
    u = fx * x + cx if skew == 0.0 else fx * x + skew * y + cx
    return u, fy * y + cy, z


def splat_zbuffer(pts: np.ndarray, K: np.ndarray, image_hw, scale: float, device: str = "cpu") -> tuple:
    """Low-resolution scatter-min z-buffer of points and each point's low-resolution pixel.

    Args:
        pts: (N, 3) float32 camera-frame points, metres.
        K: (3, 3) intrinsics of the image, pixels.
        image_hw: (H, W).
        scale: z-buffer resolution factor r (pixel centres on integers at both resolutions).
        device: "cpu" = numpy; anything else = ``mahmr_ros.render.splat_points`` on that torch device.

    Returns:
        (zbuf (h*w,) float32 with +inf where empty, lin (N,) int64 pixel index or -1 outside, (h, w)).
    """
    H, W = image_hw
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    u, v, z = project_points(pts, K)
    # Low-resolution pixel centres on integers too: u_r = r (u + 0.5) - 0.5.
    u = np.rint(scale * u + (0.5 * scale - 0.5)).astype(np.int64)
    v = np.rint(scale * v + (0.5 * scale - 0.5)).astype(np.int64)
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
