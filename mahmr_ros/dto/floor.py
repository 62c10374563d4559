"""The floor as a DTO cue: the scale along the ray that puts a person's soles on a known floor.

Scaling a person about the camera centre by ``s`` (what DTO does) moves their lowest point ``X``
along its ray; it lands on the floor (``up . X = -h``, camera height ``h``, floor 'up' ``u`` in the
camera frame) for ``s = -h / (u . X)``. That is a per-person metric depth measurement, as a depth
sensor gives, with its own uncertainty: the floor's (camera height and pitch sigma) and the contact
itself (``contact_sigma``:
the lowest vertex is not exactly where the sole touches, feet are lifted while walking).

It enters DTO-Lite's MAP like any depth cue (spec dto §10.1): precision-weighted with the height
prior. A floor only applies to people whose feet are seen (their lowest point projects inside the
image) and stand on it (the implied height is human: ``min_height_m`` .. ``MAX_HEIGHT_M``).
"""

from __future__ import annotations

import math

import numpy as np

from mahmr_ros.dto.solve import MAX_HEIGHT_M
from mahmr_ros.geometry import project
from mahmr_ros.types import FloorEstimate, HumanEstimate

#: Relative 1-sigma of the floor contact (the lowest vertex vs the true contact, a lifted foot).
CONTACT_SIGMA = 0.02


def floor_scale_cue(
    humans: list[HumanEstimate],
    floor: FloorEstimate,
    K: np.ndarray,
    image_hw: tuple[int, int],
    contact_sigma: float = CONTACT_SIGMA,
    min_height_m: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """Per person, the scale that stands them on ``floor`` and its 1-sigma.

    Args:
        humans: P estimates (vertices in the camera frame, metres; ``height_m``).
        floor: the floor (camera height and pitch, with their sigmas).
        K: (3, 3) intrinsics, pixels.
        image_hw: (H, W) of the image: people whose lowest point projects outside it are not cued
            (their feet are not seen, so the mesh's lowest point is a guess).
        contact_sigma: relative 1-sigma of the contact (see :data:`CONTACT_SIGMA`).
        min_height_m: implied heights below this (or above ``MAX_HEIGHT_M``) are not cued: that
            person is not standing on this floor.

    Returns:
        s: (P,) scales (NaN = no cue); sigma: (P,) their 1-sigma (NaN = no cue).
    """
    P = len(humans)
    s = np.full(P, np.nan)
    sigma = np.full(P, np.nan)
    if P == 0:
        return s, sigma
    H, W = image_hw
    K = np.asarray(K, np.float64)
    up = floor.up_cam
    d_up = np.array([0.0, math.sin(floor.pitch_rad), -math.cos(floor.pitch_rad)])  # d up / d pitch
    rel_h = floor.camera_height_sigma_m / floor.camera_height_m
    for i, h in enumerate(humans):
        V = np.asarray(h.vertices, np.float64)
        if V.ndim != 2 or len(V) == 0 or not (np.isfinite(h.height_m) and h.height_m > 0):
            continue
        low = V[np.argmin(V @ up)]
        above = float(low @ up)  # the lowest point's height relative to the camera (< 0: below it)
        if low[2] <= 0 or above >= 0:
            continue
        u, v = project(low, K)
        if not (0 <= u <= W - 1 and 0 <= v <= H - 1):
            continue
        k = -floor.camera_height_m / above
        if not min_height_m <= k * h.height_m <= MAX_HEIGHT_M:
            continue
        rel_pitch = floor.pitch_sigma_rad * abs(float(low @ d_up) / above)
        s[i] = k
        sigma[i] = k * math.sqrt(rel_h**2 + rel_pitch**2 + contact_sigma**2)
    return s, sigma


def fuse_scale(s_prior, var_prior, s_cue, sigma_cue) -> tuple[np.ndarray, np.ndarray]:
    """Precision-weighted fusion of two Gaussian scale estimates (NaN cue = the prior unchanged).

    Returns:
        (s, var): fused (P,) scales and variances.
    """
    s_prior, var_prior = np.asarray(s_prior, np.float64), np.asarray(var_prior, np.float64)
    s_cue, sigma_cue = np.asarray(s_cue, np.float64), np.asarray(sigma_cue, np.float64)
    has = np.isfinite(s_cue) & np.isfinite(sigma_cue) & (sigma_cue > 0)
    prec_cue = np.where(has, 1.0 / np.where(has, sigma_cue, 1.0) ** 2, 0.0)
    prec = 1.0 / var_prior + prec_cue
    s = (s_prior / var_prior + np.where(has, s_cue, 0.0) * prec_cue) / prec
    return s, 1.0 / prec
