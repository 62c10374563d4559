"""solve_group vs brute-force minimisation of E(alpha, beta), and hand-worked branch cases (spec
dto §12)."""

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from mahmr_ros.dto.solve import alpha_lower_bound, solve_group


def energy(theta, d, z, h, mu, sigma):
    alpha, beta = theta
    return float(np.sum((h / z * (alpha * d + beta) - mu) ** 2 / sigma**2))


def random_group(rng, n):
    """True Z = 1.7 d + 0.4, meshes off by 0.7..1.3 along the ray, heights near the prior."""
    d = rng.uniform(1.0, 6.0, n)
    Z = 1.7 * d + 0.4
    s = rng.uniform(0.7, 1.3, n)
    mu = rng.uniform(1.55, 1.85, n)
    sigma = rng.uniform(0.06, 0.12, n)
    h = mu * rng.normal(1.0, 0.03, n) / s
    return dict(
        d=d,
        z=Z / s,
        h=h,
        mu=mu,
        sigma=sigma,
        slopes=np.zeros(n),
        corrs=np.zeros(n),
        depth_std=np.full(n, 1e-3),
    )


@pytest.mark.parametrize("seed", range(8))
def test_closed_form_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    g = random_group(rng, int(rng.integers(3, 9)))
    alpha, beta, info = solve_group(**g, alpha_min_default=-1e9)
    assert info.n_opt == len(g["d"]) and not info.forced
    args = (g["d"], g["z"], g["h"], g["mu"], g["sigma"])
    best = minimize(
        energy,
        x0=[1.0, 0.0],
        args=args,
        method="Nelder-Mead",
        options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000),
    )
    np.testing.assert_allclose([alpha, beta], best.x, rtol=1e-5, atol=1e-6)
    assert energy([alpha, beta], *args) <= best.fun + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_alpha_min_branch_gives_exact_beta_for_fixed_alpha(seed):
    rng = np.random.default_rng(100 + seed)
    g = random_group(rng, 6)
    _, _, free = solve_group(**g, alpha_min_default=-1e9)
    bound = free.alpha + 0.5  # force the clamp
    alpha, beta, info = solve_group(**g, alpha_min_default=bound, max_height_m=100.0)
    assert info.forced and alpha == pytest.approx(bound)
    args = (g["d"], g["z"], g["h"], g["mu"], g["sigma"])
    best = minimize_scalar(lambda b: energy([bound, b], *args), bracket=(-5, 5), tol=1e-12)
    assert beta == pytest.approx(best.x, abs=1e-6)


def test_is_line_forces_alpha_min_even_when_free_alpha_is_larger():
    rng = np.random.default_rng(7)
    g = random_group(rng, 5)
    g["depth_std"] = np.full(5, 10.0)  # within-person spread >> spread between people
    alpha, beta, info = solve_group(**g, alpha_min_default=0.25, max_height_m=100.0)
    assert info.is_line and info.forced and alpha == 0.25
    a = g["h"] / g["z"]
    w = 1 / g["sigma"] ** 2
    B, C, E = np.sum(w * a * a * g["d"]), np.sum(w * a * a), np.sum(w * a * g["mu"])
    assert beta == pytest.approx((E - B * 0.25) / C)  # beta = (E' - B alpha) / C


def test_alpha_min_is_corr_weighted_slope_mean():
    slopes = np.array([2.0, 4.0, 100.0])
    corrs = np.array([0.6, 0.9, 0.4])  # the third is below 0.5 and ignored
    assert alpha_lower_bound(slopes, corrs) == pytest.approx((0.6 * 2 + 0.9 * 4) / 1.5)
    assert alpha_lower_bound(slopes, [0.1, np.nan, 0.2], default=20.0) == 20.0
    assert alpha_lower_bound(slopes, corrs, use_slopes=False) == 20.0


def test_outlier_loop_skips_the_tallest_implied_person():
    rng = np.random.default_rng(3)
    g = random_group(rng, 6)
    g["h"][2] *= 1.8  # implied height ~3 m once alpha is held near the truth by the bound
    alpha, beta, info = solve_group(**g, alpha_min_default=1.7)
    assert info.skipped.tolist() == [False, False, True, False, False, False]
    assert info.n_opt == 5 and info.n_outliers == 1 and info.rounds == 2
    assert np.all(info.heights_m[info.active] <= 2.1)
    keep = np.arange(6) != 2
    ref_alpha, ref_beta, _ = solve_group(
        **{k: v[keep] for k, v in g.items()}, alpha_min_default=1.7
    )
    assert (alpha, beta) == pytest.approx((ref_alpha, ref_beta))
    scales = info.scales(g["d"], g["z"])
    assert scales[2] == 1.0 and scales[0] == pytest.approx((alpha * g["d"][0] + beta) / g["z"][0])


def test_two_people_exact_fit_is_applied_but_not_counted():
    d, z = np.array([2.0, 4.0]), np.array([3.0, 6.5])
    h, mu = np.array([1.8, 1.6]), np.array([1.7, 1.7])
    alpha, beta, info = solve_group(
        d, z, h, mu, [0.1, 0.1], [0, 0], [0, 0], [0, 0], alpha_min_default=-1e9
    )
    np.testing.assert_allclose(
        h / z * (alpha * d + beta), mu, rtol=1e-9
    )  # both heights hit exactly
    assert info.active.all() and info.n_opt == 0 and info.dev == 0.0


def test_lone_person_and_degenerate_group_are_skipped_or_forced():
    alpha, beta, info = solve_group([1.0], [4.0], [1.7], [1.7], [0.1], [0], [0], [0])
    assert (alpha, beta) == (0.0, 4.0) and info.group_skipped and info.skipped.all()
    # All d equal: A C - B^2 = 0; must not divide by zero (forced to alpha_min).
    alpha, beta, info = solve_group(
        [2.0] * 3,
        [3.0, 3.5, 4.0],
        [1.7] * 3,
        [1.7] * 3,
        [0.1] * 3,
        [0] * 3,
        [0] * 3,
        [0] * 3,
        alpha_min_default=1.0,
        max_height_m=100,
    )
    assert info.forced and np.isfinite(beta)


def test_outlier_with_two_people_left_skips_group():
    # Forced to alpha_min, two people: the 4 m "person" stays an outlier and cannot be dropped (<=
    # 2 active).
    d, z, h = np.array([2.0, 4.0]), np.array([3.0, 6.0]), np.array([1.7, 4.0])
    alpha, beta, info = solve_group(
        d, z, h, [1.7] * 2, [0.1] * 2, [0] * 2, [0] * 2, [0] * 2, alpha_min_default=5.0
    )
    assert (
        info.group_skipped
        and (alpha, beta) == (0.0, 6.0)
        and info.n_opt == 0
        and info.skipped.all()
    )


def test_prior_makes_single_person_solvable_and_bad_input_raises():
    prior = (np.array([1.0, 0.0]), np.diag([1 / 0.02**2, 1 / 0.05**2]))
    alpha, beta, info = solve_group(
        [3.0], [3.0], [1.7], [1.7], [0.07], [0], [0], [0], prior=prior, alpha_min_default=-1e9
    )
    assert info.active.all() and alpha == pytest.approx(1.0, abs=0.05) and abs(beta) < 0.2
    with pytest.raises(ValueError, match="'z' has 1 entries"):
        solve_group([1.0, 2.0], [3.0], [1.7, 1.7], [1.7, 1.7], [0.1, 0.1], [0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="must be > 0"):
        solve_group(
            [1.0, 2.0], [3.0, 0.0], [1.7, 1.7], [1.7, 1.7], [0.1, 0.1], [0, 0], [0, 0], [0, 0]
        )
