"""Metric placement: the camera-frame translation that makes a metric body reproject onto 2D
landmarks.

Given body points already rotated into camera axes (``R_cam_anny @ p_anny``, metres) and their
detected pixels, the translation ``t`` solves ``u = fx (X + tx) / (Z + tz) + cx`` (and the same for
v). Multiplying out gives two equations per point that are linear in ``t``; a weighted linear
least-squares solve gives the start, and a few Gauss-Newton steps on the true reprojection error
finish it. The depth is metric because the body is: its size comes from the fitted Anny phenotypes,
and DTO refines it afterwards.
"""

from __future__ import annotations

import math

import numpy as np


def assumed_K(width_px: int, height_px: int, hfov_deg: float = 60.0) -> np.ndarray:
    """Pinhole intrinsics for an uncalibrated camera: square pixels, centred principal point.

    Args:
        width_px: image width W, pixels.
        height_px: image height H, pixels.
        hfov_deg: assumed horizontal field of view, degrees (60 is typical of webcams and robot RGB
            heads).

    Returns:
        (3, 3) float64 K in pixels, ``fx = fy = (W / 2) / tan(hfov / 2)``,
        ``(cx, cy) = ((W - 1) / 2, (H - 1) / 2)``.
    """
    if not 1.0 < hfov_deg < 179.0:
        raise ValueError(f"[offline] hfov_deg must be in (1, 179) degrees, got {hfov_deg}")
    f = 0.5 * width_px / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width_px - 1) / 2], [0.0, f, (height_px - 1) / 2], [0.0, 0.0, 1.0]])


def solve_translation(
    points_rot_m: np.ndarray,
    uv_px: np.ndarray,
    K: np.ndarray,
    weights: np.ndarray | None = None,
    gauss_newton_steps: int = 3,
    min_depth_m: float = 0.3,
    floor: tuple[np.ndarray, float, np.ndarray, float] | None = None,
) -> np.ndarray:
    """Camera-frame translation of a rigid metric point set from its 2D projections.

    With ``floor``, one more residual asks a contact point (the sole of a standing person) to lie
    on a known floor plane: ``up . (sole + t) = -camera_height``, converted to pixels at the
    point's depth (``f / z`` pixels per metre) and weighted like a keypoint. Seen feet already pin
    the contact in the image; the extra residual settles what the keypoints leave loose for a small
    or 2D-fitted body, the depth, so the person stands on the same floor as everyone else (their
    size came from that floor).

    Args:
        points_rot_m: (N, 3) body points in camera axes relative to the model origin, metres
            (``R_cam_anny @ p_anny``); the result places them at ``points_rot_m + t``.
        uv_px: (N, 2) observed pixels in the original image.
        K: (3, 3) intrinsics of the original image, pixels.
        weights: (N,) confidences >= 0 (0 = ignore the point); default all ones.
        gauss_newton_steps: refinement steps on the pixel reprojection error after the linear
            solve.
        min_depth_m: depth floor for the solution (a person cannot be behind or inside the camera).
        floor: ``(up_cam (3,), camera_height_m, contact_rot_m (3,), weight)``: the floor's unit up
            in the camera frame, the camera's height above it, the contact point in camera axes
            relative to the model origin (like ``points_rot_m``), and the residual's weight
            (keypoint units); None = no floor.

    Returns:
        (3,) float64 translation t, metres, camera frame.

    Raises:
        ValueError: fewer than 2 points with positive weight, or mismatched shapes.
    """
    P = np.asarray(points_rot_m, dtype=np.float64).reshape(-1, 3)
    uv = np.asarray(uv_px, dtype=np.float64).reshape(-1, 2)
    if len(P) != len(uv):
        raise ValueError(f"[offline] solve_translation: {len(P)} points but {len(uv)} pixels")
    w = np.ones(len(P)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(P):
        raise ValueError(f"[offline] solve_translation: {len(P)} points but {len(w)} weights")
    w = np.clip(np.nan_to_num(w), 0, None)
    keep = (w > 0) & np.all(np.isfinite(uv), axis=1)
    if keep.sum() < 2:
        raise ValueError(
            f"[offline] solve_translation needs >= 2 weighted points, got {int(keep.sum())}"
        )
    P, uv, w = P[keep], uv[keep], w[keep]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    # fx (X + tx) - du (Z + tz) = 0  and  fy (Y + ty) - dv (Z + tz) = 0, linear in t = (tx, ty, tz)
    zeros = np.zeros_like(du)
    A = np.concatenate(
        [
            np.stack([np.full_like(du, fx), zeros, -du], 1),
            np.stack([zeros, np.full_like(dv, fy), -dv], 1),
        ]
    )
    b = np.concatenate([du * P[:, 2] - fx * P[:, 0], dv * P[:, 2] - fy * P[:, 1]])
    sw = np.sqrt(np.concatenate([w, w]))
    t = np.linalg.lstsq(A * sw[:, None], b * sw, rcond=None)[0]
    t[2] = max(t[2], min_depth_m - P[:, 2].min())
    if floor is not None:
        up, height, contact, floor_weight = floor
        up, contact = np.asarray(up, np.float64), np.asarray(contact, np.float64)
        sw = np.concatenate([sw, [math.sqrt(max(float(floor_weight), 0.0))]])
        gauss_newton_steps = max(
            gauss_newton_steps, 2
        )  # the floor residual enters the Gauss-Newton steps
    for _ in range(gauss_newton_steps):
        X = P + t
        z = np.maximum(X[:, 2], 1e-3)
        r = np.concatenate([fx * X[:, 0] / z + cx - uv[:, 0], fy * X[:, 1] / z + cy - uv[:, 1]])
        J = np.concatenate(
            [
                np.stack([fx / z, zeros, -fx * X[:, 0] / z**2], 1),
                np.stack([zeros, fy / z, -fy * X[:, 1] / z**2], 1),
            ]
        )
        if floor is not None:  # metres off the floor -> pixels at the contact's depth
            px_per_m = 0.5 * (fx + fy) / max(contact[2] + t[2], 1e-3)
            r = np.concatenate([r, [px_per_m * (up @ (contact + t) + height)]])
            J = np.concatenate([J, px_per_m * up[None]])
        step = np.linalg.lstsq(J * sw[:, None], -r * sw, rcond=None)[0]
        t = t + step
        t[2] = max(t[2], min_depth_m - P[:, 2].min())
    return t
