"""DTO-Lite's per-frame solve (spec dto §10.1): each person's scale from its cue and height prior.

* Metric depth: (alpha, beta) = (1, 0) and the closed-form soft scale
  s_i = (w h mu + lambda z Z) / (w h^2 + lambda z^2), lambda_i from the sensor model
  sigma_Z(D) = sigma0 + k D^2 combined with the cue's standard error.
* Relative cue: one group with free (alpha, beta) through the official solver with the soft weights
  w~_i and the temporal Gaussian prior of ``AffineFilter`` on (alpha, beta); Z = alpha d + beta.
* Guards: a non-positive scale or a metric height above 2.1 m leaves the person unchanged
  ("outlier").
"""

from __future__ import annotations

import numpy as np

from mahmr_ros.dto.kalman import AffineFilter
from mahmr_ros.dto.lite_config import LiteConfig
from mahmr_ros.dto.lite_cues import LiteCues
from mahmr_ros.dto.solve import MAX_HEIGHT_M, soft_scale, soft_weights, solve_group


def solve_scales(
    cues: LiteCues, h, mu, sigma, depth_kind: str, cfg: LiteConfig, ab_filter: AffineFilter
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-person scale, its variance and status for one frame.

    Args:
        cues: this frame's cues (``removed`` marks people that cannot be solved).
        h: (P,) estimated heights, metres (1 where unusable).
        mu, sigma: (P,) height prior mean and std, metres.
        depth_kind: "metric", "relative" or "disparity".
        cfg: LiteConfig.
        ab_filter: the (alpha, beta) filter of the relative cue (updated by a relative solve).

    Returns:
        (scale (P,) NaN = unchanged, variance (P,), status per person: "refined", "removed:<why>",
        "outlier", "unanchored" or "group_skipped").
    """
    P = len(h)
    s = np.full(P, np.nan)
    var_s = np.zeros(P)
    ok = np.array([r is None for r in cues.removed], bool)
    status = [f"removed:{r}" if r else "refined" for r in cues.removed]
    if not ok.any():
        return s, var_s, status
    if depth_kind == "metric":
        Z = cues.d[ok]
        sigma_z = np.hypot(cues.sem[ok], cfg.sensor_sigma0_m + cfg.sensor_k_per_m * Z**2)
    else:
        Z, sigma_z = relative_map(cues, ok, h, mu, sigma, status, cfg, ab_filter)
    lam = 1.0 / sigma_z**2
    w = 1.0 / sigma[ok] ** 2
    z, hh = cues.z[ok], h[ok]
    s[ok], var_s[ok] = soft_scale(w, hh, mu[ok], z, Z, lam)
    bad = ok & ~(np.isfinite(s) & (s > 0) & (s * h <= MAX_HEIGHT_M))
    for i in np.flatnonzero(bad):  # keeps a more specific reason (unanchored, group_skipped)
        status[i] = "outlier" if status[i] == "refined" else status[i]
    s[bad] = np.nan
    return s, var_s, status


def relative_map(
    cues: LiteCues, ok, h, mu, sigma, status: list, cfg: LiteConfig, ab_filter: AffineFilter
):
    """Z = alpha d + beta for the usable people (one group, temporal prior), and the model sigma of
    Z.

    Marks ``status`` "unanchored" (a lone person before any map exists) or "group_skipped"; updates
    ``ab_filter`` with the solved map.
    """
    d, z = cues.d[ok], cues.z[ok]
    prior = ab_filter.prior(cfg.ab_process_sigma)
    if prior is None and ok.sum() < 2:  # nothing to anchor a single person's map to yet
        for i in np.flatnonzero(ok):
            status[i] = "unanchored"
        return np.full(int(ok.sum()), np.nan), np.ones(int(ok.sum()))
    alpha_guess = ab_filter.mean[0] if ab_filter.mean is not None else 1.0
    sigma_z = np.hypot(alpha_guess * cues.sem[ok], cfg.relative_sigma * np.abs(alpha_guess * d))
    lam = 1.0 / np.maximum(sigma_z, 1e-9) ** 2
    w = 1.0 / sigma[ok] ** 2
    w_soft = soft_weights(w, h[ok], z, lam)
    alpha, beta, info = solve_group(
        d, z, h[ok], mu[ok], sigma[ok], np.zeros_like(d), np.zeros_like(d), np.zeros_like(d),
        weights=w_soft, prior=prior, use_slopes=False, alpha_min_default=cfg.alpha_min,
    )  # fmt: skip
    if info.group_skipped:
        for i in np.flatnonzero(ok):
            status[i] = "group_skipped"
        return np.full(int(ok.sum()), np.nan), np.ones(int(ok.sum()))
    ab_filter.update(alpha, beta, info.hessian)
    Z = alpha * d + beta
    Z[~info.active] = np.nan  # outliers of the 2.1 m loop are not moved
    sigma_z = np.hypot(alpha * cues.sem[ok], cfg.relative_sigma * np.abs(Z))
    return Z, sigma_z
