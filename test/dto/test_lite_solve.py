"""DTO-Lite per-frame solve: the soft scale against a numerical minimiser, guards, the relative
map."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from mahmr_ros.dto.kalman import AffineFilter
from mahmr_ros.dto.lite_config import LiteConfig
from mahmr_ros.dto.lite_cues import LiteCues
from mahmr_ros.dto.lite_solve import solve_scales


def _cues(d, z, sem, removed=None) -> LiteCues:
    n = len(d)
    return LiteCues(np.asarray(d, float), np.asarray(z, float), np.asarray(sem, float),
                    np.full(n, 100), np.full(n, 500), removed or [None] * n)  # fmt: skip


def test_metric_scale_minimises_the_soft_objective():
    cfg = LiteConfig()
    h, mu, sigma = np.array([1.6, 1.8]), np.array([1.70, 1.75]), np.array([0.07, 0.1])
    cues = _cues(d=[3.3, 5.2], z=[3.0, 5.0], sem=[0.01, 0.02])
    s, var_s, status = solve_scales(cues, h, mu, sigma, "metric", cfg, AffineFilter())
    assert status == ["refined", "refined"]
    for i in range(2):  # reference: minimise w (s h - mu)^2 + lambda (s z - Z)^2 numerically
        sigma_z = np.hypot(cues.sem[i], cfg.sensor_sigma0_m + cfg.sensor_k_per_m * cues.d[i] ** 2)

        def objective(x, i=i, sigma_z=sigma_z):
            return ((x * h[i] - mu[i]) / sigma[i]) ** 2 + (
                (x * cues.z[i] - cues.d[i]) / sigma_z
            ) ** 2

        best = minimize_scalar(
            objective, bounds=(0.5, 2.0), method="bounded", options={"xatol": 1e-12}
        )
        assert s[i] == pytest.approx(best.x, abs=1e-7)
        # Posterior variance = inverse curvature of the (halved) objective.
        assert var_s[i] == pytest.approx(
            1 / ((h[i] / sigma[i]) ** 2 + (cues.z[i] / sigma_z) ** 2), rel=1e-9
        )


def test_guards_leave_implausible_and_removed_people_unchanged():
    h, mu, sigma = np.array([1.7, 1.7]), np.array([1.7, 1.7]), np.array([0.1, 0.1])
    cues = _cues(d=[6.0, np.nan], z=[3.0, np.nan], sem=[0.001, 0.0], removed=[None, "visible"])
    s, _, status = solve_scales(cues, h, mu, sigma, "metric", LiteConfig(), AffineFilter())
    assert status == ["outlier", "removed:visible"]  # 2x the distance would make a 3.4 m person
    assert np.isnan(s).all()


def test_relative_map_recovers_an_exact_affine_cue_and_then_anchors_a_lone_person():
    alpha, beta = 0.8, 0.5  # Z = alpha d + beta
    z = np.array([2.0, 3.0, 4.5])  # rendered depths of the estimates
    s_true = np.array([1.1, 0.9, 1.2])
    h = np.array([1.6, 1.9, 1.4])
    mu, sigma = s_true * h, np.full(3, 0.05)  # consistent data: the true scales are the optimum
    d = (s_true * z - beta) / alpha
    ab = AffineFilter()
    s, _, status = solve_scales(
        _cues(d, z, np.zeros(3)), h, mu, sigma, "relative", LiteConfig(), ab
    )
    assert status == ["refined"] * 3
    np.testing.assert_allclose(s, s_true, rtol=1e-4)
    np.testing.assert_allclose(ab.mean, [alpha, beta], rtol=1e-3, atol=1e-3)
    # A lone person: unanchored without a map, solved through the filtered map once there is one.
    lone = _cues(d[:1], z[:1], np.zeros(1))
    s1, _, status1 = solve_scales(
        lone, h[:1], mu[:1], sigma[:1], "relative", LiteConfig(), AffineFilter()
    )
    assert status1 == ["unanchored"] and np.isnan(s1[0])
    s2, _, status2 = solve_scales(lone, h[:1], mu[:1], sigma[:1], "relative", LiteConfig(), ab)
    assert status2 == ["refined"] and s2[0] == pytest.approx(s_true[0], rel=1e-3)
