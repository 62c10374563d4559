"""The closed-form per-group DTO solver (spec dto §3.4), with the DTO-Lite extensions of §10.1.

Per person i of a depth group: relative depth cue ``d_i``, rendered mean surface depth ``z_i`` (m),
initial height ``h_i`` (m) and a Gaussian height prior N(mu_i, sigma_i^2). The group's affine map Z
= alpha d + beta is the weighted least-squares minimiser of

    E(alpha, beta) = sum_i w_i (a_i (alpha d_i + beta) - mu_i)^2 (+ R(alpha, beta)),
    a_i = h_i / z_i,

subject to alpha >= alpha_min, with the official outlier loop (implied height > 2.1 m). Each person
then gets the scale s_i = (alpha d_i + beta) / z_i.

Extensions (keyword-only, defaults reproduce the official solver): ``weights`` replaces w_i =
1/sigma_i^2 (DTO-Lite passes the soft-constraint weights w~_i of §10.1), and ``prior`` adds a
Gaussian R on (alpha, beta) (the temporal prior of §10.2, or the tight RGB-D prior).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALPHA_MIN_DEFAULT = (
    20.0  # raw DA-V2-L 1/disparity units (spec dto §11 item 3: recalibrate for other models)
)
MAX_HEIGHT_M = 2.1
MAX_ROUNDS = 10
CORR_THRESHOLD = 0.5


@dataclass
class GroupSolution:
    """Everything ``solve_group`` decided, per input person (index order of the inputs).

    Attributes:
        alpha, beta: the affine map Z = alpha d + beta (beta in metres, alpha in m per depth-cue
            unit).
        active: (N,) bool, people whose scale comes from (alpha, beta) (the final set S, or both
            people of an exact two-person fit).
        skipped: (N,) bool, people left unchanged (outliers of the 2.1 m loop, or the whole group
            when skipped).
        heights_m: (N,) float64, implied heights h_i (alpha d_i + beta) / z_i, metres.
        n_opt: optimised count (0 for the exact two-person fit and for skipped groups).
        dev: mean standardised deviation |H_i - mu_i| / sigma_i over S (0 when n_opt is 0).
        forced: True when alpha was clamped to alpha_min (alpha* < alpha_min, is_line or a singular
            system).
        alpha_min: the lower bound used.
        is_line: people are not separable in relative depth (std(d) < mean(depth_std) over S).
        group_skipped: the whole group was left unchanged.
        n_outliers: people skipped by the outlier loop (each counts as deviation 3 in image
            acceptance).
        rounds: solve rounds run.
        hessian: (2, 2) float64 normal matrix of the final fit (its inverse is the (alpha, beta)
            covariance up to the noise scale); zeros when the group was skipped.
    """

    alpha: float
    beta: float
    active: np.ndarray
    skipped: np.ndarray
    heights_m: np.ndarray
    n_opt: int = 0
    dev: float = 0.0
    forced: bool = False
    alpha_min: float = ALPHA_MIN_DEFAULT
    is_line: bool = False
    group_skipped: bool = False
    n_outliers: int = 0
    rounds: int = 0
    hessian: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))

    def scales(self, d: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(N,) per-person scale s_i = (alpha d_i + beta) / z_i for active people, 1 elsewhere."""
        s = np.ones(len(self.active))
        s[self.active] = (self.alpha * np.asarray(d)[self.active] + self.beta) / np.asarray(z)[
            self.active
        ]
        return s


def alpha_lower_bound(
    slopes: np.ndarray,
    corrs: np.ndarray,
    default: float = ALPHA_MIN_DEFAULT,
    use_slopes: bool = True,
) -> float:
    """alpha_min: corr-weighted mean of the intra-body slopes of people with corr > 0.5, else
    ``default``.

    Args:
        slopes: (N,) slope of the row-demeaned rendered depth (m) against the depth cue, per
            person.
        corrs: (N,) Pearson correlation of the same fit (NaN counts as 0).
        default: bound used when no person qualifies or ``use_slopes`` is False.
        use_slopes: the official "X condition" switch.
    """
    slopes = np.asarray(slopes, dtype=np.float64)
    corrs = np.nan_to_num(np.asarray(corrs, dtype=np.float64), nan=0.0)
    good = (corrs > CORR_THRESHOLD) & np.isfinite(slopes)
    if not use_slopes or not good.any():
        return float(default)
    return float(np.sum(corrs[good] * slopes[good]) / np.sum(corrs[good]))


def _check(name: str, x, n: int | None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if n is not None and len(arr) != n:
        raise ValueError(
            f"[dto.solve] '{name}' has {len(arr)} entries, expected {n} (one per person)"
        )
    return arr


def solve_group(
    d,
    z,
    h,
    mu,
    sigma,
    slopes,
    corrs,
    depth_std,
    *,
    weights=None,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
    alpha_min_default: float = ALPHA_MIN_DEFAULT,
    use_slopes: bool = True,
    max_height_m: float = MAX_HEIGHT_M,
    max_rounds: int = MAX_ROUNDS,
) -> tuple[float, float, GroupSolution]:
    """Official closed-form solver for one depth group (spec dto §3.4).

    Args:
        d: (N,) depth cue per person (relative units, or metres for metric depth).
        z: (N,) mean rendered surface depth of the initial mesh over the person's cue pixels,
            metres, > 0.
        h: (N,) initial T-pose heights, metres, > 0.
        mu: (N,) prior mean heights (already modified per §3.4), metres.
        sigma: (N,) prior std, metres, > 0.
        slopes: (N,) intra-body slopes (for alpha_min).
        corrs: (N,) correlations of the intra-body fits.
        depth_std: (N,) population std of the depth cue over each person's pixels (for is_line).
        weights: (N,) optional replacement for 1/sigma^2 (DTO-Lite soft-constraint weights).
        prior: optional (theta0 (2,), precision (2, 2)) Gaussian on (alpha, beta). With a prior the
            two-person exact-fit rule does not apply and a single person is solvable.
        alpha_min_default: bound when no slope qualifies (raw DA-V2-L units; recalibrate per depth
            model).
        use_slopes: compute alpha_min from slopes (official default) or always use the default.
        max_height_m: implied height above which a person is an outlier (2.1 m).
        max_rounds: outlier-loop rounds (10).

    Returns:
        (alpha, beta, info): the map Z = alpha d + beta and a ``GroupSolution``.

    Raises:
        ValueError: inconsistent lengths, non-finite values, or z, h, sigma not > 0.
    """
    d = _check("d", d, None)
    n = len(d)
    z, h, mu, sigma = (
        _check(k, x, n) for k, x in (("z", z), ("h", h), ("mu", mu), ("sigma", sigma))
    )
    slopes, corrs, depth_std = (
        _check(k, x, n)
        for k, x in (("slopes", slopes), ("corrs", corrs), ("depth_std", depth_std))
    )
    for name, arr in (
        ("d", d),
        ("z", z),
        ("h", h),
        ("mu", mu),
        ("sigma", sigma),
        ("depth_std", depth_std),
    ):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"[dto.solve] '{name}' has non-finite entries: {arr.tolist()}")
    if np.any(z <= 0) or np.any(h <= 0) or np.any(sigma <= 0):
        raise ValueError(
            "[dto.solve] z, h and sigma must be > 0 (metres); check the cue extraction"
        )
    w = 1.0 / sigma**2 if weights is None else _check("weights", weights, n)
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"[dto.solve] weights must be finite and >= 0, got {w.tolist()}")
    a = h / z
    alpha_min = alpha_lower_bound(slopes, corrs, alpha_min_default, use_slopes)
    info = GroupSolution(
        0.0, 0.0, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n), alpha_min=alpha_min
    )

    min_people = (
        1 if prior is not None else 2
    )  # fewer cannot be solved; this many cannot lose an outlier
    if (
        n < min_people
    ):  # a lone person is not optimised (§3.3): (alpha, beta) = (0, z) for the ordering rule
        info.beta = float(z[0]) if n else 0.0
        info.skipped[:] = True
        info.group_skipped = True
        return info.alpha, info.beta, info

    S = np.ones(n, bool)
    converged = False
    for rounds in range(1, max_rounds + 1):
        alpha, beta, forced, is_line, M = _fit(
            a[S], d[S], mu[S], w[S], depth_std[S], alpha_min, prior
        )
        info.rounds = rounds
        if S.sum() == 2 and not forced and prior is None:
            # Two equations, two unknowns: exact fit, applied without the height check, "not
            # optimised".
            info.alpha, info.beta, info.forced, info.is_line, info.hessian = (
                alpha,
                beta,
                forced,
                is_line,
                M,
            )
            info.active = S.copy()
            info.heights_m = a * (alpha * d + beta)
            return alpha, beta, info
        H = a * (alpha * d + beta)
        excess = np.where(S, H - max_height_m, -np.inf)
        if not np.any(excess > 0):
            converged = True
            break
        if S.sum() <= min_people:
            # An outlier with <= 2 people active: the whole group stays unchanged (alpha 0, beta
            # max z).
            info.alpha, info.beta = 0.0, float(z.max())
            info.skipped[:] = True
            info.group_skipped = True
            info.n_outliers = n
            info.heights_m = H
            return info.alpha, info.beta, info
        S[int(np.argmax(excess))] = False
    if (
        not converged
    ):  # rounds exhausted: the last removal is not re-checked; fit the final set once more
        alpha, beta, forced, is_line, M = _fit(
            a[S], d[S], mu[S], w[S], depth_std[S], alpha_min, prior
        )
    H = a * (alpha * d + beta)
    info.alpha, info.beta, info.forced, info.is_line, info.hessian = (
        alpha,
        beta,
        forced,
        is_line,
        M,
    )
    info.active = S.copy()
    info.skipped = ~S
    info.n_outliers = int((~S).sum())
    info.heights_m = H
    info.n_opt = int(S.sum())
    info.dev = float(np.mean(np.abs(H[S] - mu[S]) / sigma[S]))
    return alpha, beta, info


def _fit(a, d, mu, w, depth_std, alpha_min, prior):
    """Weighted LSQ of a (alpha d + beta) ~ mu, alpha >= alpha_min -> (alpha, beta, forced,
    is_line, M)."""
    wa2 = w * a * a
    A, B, C = np.sum(wa2 * d * d), np.sum(wa2 * d), np.sum(wa2)
    D, E = np.sum(w * a * d * mu), np.sum(w * a * mu)
    M = np.array([[A, B], [B, C]])
    b = np.array([D, E])
    if prior is not None:
        theta0, precision = (np.asarray(prior[0], np.float64), np.asarray(prior[1], np.float64))
        M = M + precision
        b = b + precision @ theta0
    det = M[0, 0] * M[1, 1] - M[0, 1] ** 2
    is_line = bool(len(d) > 0 and np.std(d) < np.mean(depth_std))
    singular = not det > 1e-12 * max(M[0, 0] * M[1, 1], 1e-300)
    if not singular:
        alpha = (M[1, 1] * b[0] - M[0, 1] * b[1]) / det
        beta = (M[0, 0] * b[1] - M[0, 1] * b[0]) / det
    forced = singular or is_line or alpha < alpha_min
    if forced:  # exact minimiser in beta for alpha fixed at the bound
        alpha = alpha_min
        beta = (b[1] - M[0, 1] * alpha) / M[1, 1] if M[1, 1] > 0 else 0.0
    return float(alpha), float(beta), bool(forced), is_line, M


def soft_weights(w, h, z, lam) -> np.ndarray:
    """DTO-Lite weights w~_i = w_i lambda_i z_i^2 / (w_i h_i^2 + lambda_i z_i^2) (spec dto §10.1).

    Eliminating the per-person scale s_i from the soft objective leaves the reference objective
    with w_i replaced by w~_i; lambda_i = inf (a hard depth constraint) gives w~_i = w_i, i.e.
    exactly DTO.

    Args:
        w: (N,) height-prior weights 1/sigma_i^2, 1/m^2.
        h: (N,) initial heights, m.
        z: (N,) rendered depths, m.
        lam: (N,) depth-constraint precisions 1/sigma_Z^2, 1/m^2 (inf allowed).
    """
    w, h, z, lam = (np.asarray(x, np.float64) for x in (w, h, z, lam))
    return w * z**2 / (w * h**2 / lam + z**2)


def soft_scale(w, h, mu, z, Z, lam) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form per-person scale of the soft objective for a fixed depth Z_i (spec dto §10.1).

    s_i = (w h mu + lambda z Z) / (w h^2 + lambda z^2), the precision-weighted mean of the height
    prior's scale mu/h and the depth's scale Z/z; lambda = inf gives Z/z (the reference).

    Returns:
        (s, var_s): (N,) scales and their posterior variances 1 / (w h^2 + lambda z^2).
    """
    w, h, mu, z, Z, lam = (np.asarray(x, np.float64) for x in (w, h, mu, z, Z, lam))
    inv_lam = 1.0 / lam
    s = (w * h * mu * inv_lam + z * Z) / (w * h**2 * inv_lam + z**2)
    return s, 1.0 / (w * h**2 + lam * z**2)
