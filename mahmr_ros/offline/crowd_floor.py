"""The floor from a crowd: camera height and pitch from everyone's feet and a population height
prior.

One person's feet give the floor only up to their unknown size: a body fitted at any size ``H0``
projects like the true body scaled about the camera centre, so the true person is ``k`` times the
fitted one, with ``k`` set by the floor: ``k (up . X_sole) = -h`` for the sole point ``X_sole`` of
the fitted body, camera height ``h`` and floor 'up' ``u(pitch)`` (roll 0). So each person's height
is ``H = h a(pitch)`` with ``a = H0 / -(u . X_sole)``, known from the fit. Many people make ``h``
and the pitch observable: people are mostly adults of known height distribution, and someone
walking keeps their height.

Model (negative log posterior, minimised over ``l = log h`` and the pitch; log heights make the
scale additive): observations ``k`` of person ``j`` (pooled over the frames of a static camera)
give ``g_jk = log a_jk(pitch)``;

* within a person: ``g_jk`` scatter about their mean ``g_j`` with ``sigma_obs`` (fit and keypoint
  noise), Huber-weighted (a frame where a foot is mislocated, the person stepped on something);
* across people: the log height ``l + g_j`` follows a mixture of the height priors of spec dto §3.4
  (adult female, adult male, teen, kid, baby) with crowd weights, plus a uniform outlier component
  (someone on stairs, sitting on a table, a fit that put the feet elsewhere). Children are
  therefore recognised as children instead of pulling the floor, as long as the adults outnumber
  them;
* a broad Gaussian prior on the pitch (0 +- 30 degrees) for crowds that barely constrain it.

It is solved by EM: mixture responsibilities and Huber weights, then a damped Gauss-Newton step on
the two unknowns (2 x 2 normal equations, closed form), a few rounds, warm-started from the last
solution; the first solve starts from a pitch grid with ``l`` from the median "everyone is an
adult" value. The covariance is the inverse Gauss-Newton Hessian. Cost: a few numpy passes over the
pooled observations (well under a millisecond for hundreds).

Assumptions (documented, not checked): a static camera while frames are pooled (call :meth:`reset`
when it moves), a flat floor, no camera roll, people mostly standing or walking on that floor.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from mahmr_ros.dto.priors import HEIGHT_PRIORS_M
from mahmr_ros.offline.floor import floor_up
from mahmr_ros.types import FloorEstimate

#: Crowd composition prior: mixture weight per DTO height-prior class (spec dto §3.4) and of
#: outliers. A street or an office; a playground has more children (pass ``class_weights``).
CROWD_CLASS_WEIGHTS = {3: 0.38, 4: 0.38, 2: 0.09, 1: 0.09, 0: 0.02}
OUTLIER_WEIGHT = 0.04
#: Repeated observations (degrees of freedom) needed to estimate the within-person noise from the
#: data.
MIN_NOISE_DOF = 10
#: Bounds of that estimate, as a variance of the log height.
SIGMA_OBS_RANGE = (0.005**2, 0.1**2)
#: A candidate floor needs at least this fraction of the best candidate's supporting people.
MIN_SUPPORT_FRACTION = 0.5
#: Range of the uniform outlier density over heights, metres.
OUTLIER_RANGE_M = (0.4, 2.6)


@dataclass
class _Frame:
    ids: np.ndarray  # (n,) person ids
    feet_cam: (
        np.ndarray
    )  # (n, F, 3) foot points at the fitted size, camera frame, m (NaN = unseen foot)
    lift_m: np.ndarray  # (n, F) height of each foot point above the soles at the fitted size, m
    log_height: np.ndarray  # (n,) log of the fitted body's height H0, log metres
    focal_px: float  # focal length of the frame, pixels


class CrowdFloorEstimator:
    """Pools people's feet over frames and estimates the floor (see the module docstring).

    Args:
        window_frames: frames pooled (a static camera); 1 = every frame on its own.
        min_people: an estimate needs at least this many supporting (inlier) people over the
            window.
        sigma_obs: 1-sigma of one observation's log height (keypoint noise, pose, fit), ~ relative
            error.
        sigma_person: 1-sigma of a person's systematic log-height error (proportions the fit gets
            wrong), not averaged away by more frames.
        pitch_prior_rad: (mean, sigma) of the Gaussian prior on the pitch, radians.
        class_weights: mixture weight per DTO height class (see :data:`CROWD_CLASS_WEIGHTS`).
        outlier_weight: mixture weight of the outlier component.
        iterations: EM / Gauss-Newton rounds per solve (warm-started solves need few).
        max_observations: most pooled observations kept (the oldest frames go first).
        pixel_sigma_px: 1-sigma of a foot keypoint's image row, pixels: its effect on the log
            height grows as the feet near the horizon (far people), so those observations weigh
            less.
        regrid_every: solves between restarts from the pitch grid (see :meth:`solve`).
    """

    def __init__(
        self,
        window_frames: int = 300,
        min_people: int = 2,
        sigma_obs: float = 0.04,
        sigma_person: float = 0.02,
        pitch_prior_rad: tuple[float, float] = (0.0, math.radians(30.0)),
        class_weights: dict[int, float] | None = None,
        outlier_weight: float = OUTLIER_WEIGHT,
        iterations: int = 8,
        max_observations: int = 4000,
        pixel_sigma_px: float = 2.0,
        regrid_every: int = 10,
    ):
        if window_frames < 1 or min_people < 1 or iterations < 1:
            raise ValueError(
                "[offline] floor estimation needs window_frames, min_people and iterations >= 1, "
                f"got {window_frames}, {min_people}, {iterations}"
            )
        weights = CROWD_CLASS_WEIGHTS if class_weights is None else class_weights
        if not weights or any(c not in HEIGHT_PRIORS_M or w < 0 for c, w in weights.items()):
            raise ValueError(
                f"[offline] class_weights must map DTO classes 0..5 to weights >= 0, got {weights}"
            )
        self.window_frames = int(window_frames)
        self.min_people = int(min_people)
        self.sigma_obs = float(sigma_obs)
        self.sigma_person = float(sigma_person)
        self.pitch_prior = (float(pitch_prior_rad[0]), float(pitch_prior_rad[1]))
        self.iterations = int(iterations)
        self.max_observations = int(max_observations)
        self.pixel_sigma_px = float(pixel_sigma_px)
        self.regrid_every = int(regrid_every)
        self._solves_since_grid = 0
        self._grid_people = 0
        classes = sorted(weights)
        total = sum(weights.values()) + outlier_weight
        self._log_mu = np.log([HEIGHT_PRIORS_M[c][0] for c in classes])  # (C,)
        self._var_c = np.array(
            [(HEIGHT_PRIORS_M[c][1] / HEIGHT_PRIORS_M[c][0]) ** 2 for c in classes]
        )
        self._log_pi = np.log(np.maximum([weights[c] / total for c in classes], 1e-12))
        lo, hi = OUTLIER_RANGE_M
        # uniform density over [lo, hi] metres, written per unit log height at ~1.5 m
        self._log_outlier = math.log(max(outlier_weight / total, 1e-12)) - math.log(
            math.log(hi / lo)
        )
        self._frames: deque[_Frame] = deque()
        self._state: tuple[float, float] | None = None  # (log h, pitch) of the last solve
        self.estimate: FloorEstimate | None = None
        self.last_inliers: dict[int, bool] = {}

    def reset(self) -> None:
        """Forget every pooled frame and the estimate (the camera moved)."""
        self._frames.clear()
        self._state = None
        self._solves_since_grid = self._grid_people = 0
        self.estimate = None
        self.last_inliers = {}

    def add_frame(self, ids, feet_cam, lift_m, height_m, focal_px: float) -> None:
        """Pool one frame's people whose feet were seen (call once per frame, even with nobody).

        Args:
            ids: (n,) ints, the same person keeps the same id across frames (any ids when frames
                are not pooled).
            feet_cam: (n, F, 3) foot points (e.g. heels, else ankles) of each fitted body, camera
                frame, metres, at the body's fitted size; NaN rows = foot not seen.
            lift_m: (n, F) height of each foot point above the soles, metres, at the fitted size.
            height_m: (n,) height of the fitted body, metres.
            focal_px: the camera's focal length (fy), pixels.
        """
        feet = np.asarray(feet_cam, np.float64)
        feet = feet.reshape(len(ids), -1, 3) if feet.size else np.zeros((len(ids), 0, 3))
        lift = np.asarray(lift_m, np.float64).reshape(feet.shape[:2])
        height = np.asarray(height_m, np.float64).reshape(-1)
        ok = np.isfinite(feet).all(-1).any(-1) & np.isfinite(height) & (height > 0)
        self._frames.append(
            _Frame(
                np.asarray(ids, np.int64)[ok],
                feet[ok],
                np.nan_to_num(lift[ok]),
                np.log(height[ok]),
                float(focal_px),
            )
        )
        while len(self._frames) > self.window_frames or (
            len(self._frames) > 1 and sum(len(f.ids) for f in self._frames) > self.max_observations
        ):
            self._frames.popleft()

    def _pooled(self):
        frames = [f for f in self._frames if len(f.ids)]
        if not frames:
            return None
        return (
            np.concatenate([f.ids for f in frames]),
            np.concatenate([f.feet_cam for f in frames]),
            np.concatenate([f.lift_m for f in frames]),
            np.concatenate([f.log_height for f in frames]),
            np.concatenate([np.full(len(f.ids), f.focal_px) for f in frames]),
            len(frames),
        )

    def _log_scale(self, pitch: float, feet, lift, log_h0, focal):
        """Per observation: g = log a(pitch), the numerator of dg/dpitch (= that / d), d (the
        soles' height along 'up', < 0), the pixel noise's effect on d, and validity (the soles well
        below the camera)."""
        up = floor_up(math.degrees(pitch))
        d_up = np.array([0.0, math.sin(pitch), -math.cos(pitch)])  # d up / d pitch
        above = (
            feet @ up - lift
        )  # (n, F) soles' height above the camera along 'up' (negative: below)
        above = np.where(np.isfinite(above), above, np.inf)
        f = np.argmin(above, 1)  # the lower foot carries the weight
        rows = np.arange(len(f))
        d = above[rows, f]
        valid = d < -0.1 * np.exp(log_h0)  # soles at least a tenth of the height below the camera
        d_safe = np.where(valid, d, -1.0)
        g = log_h0 - np.log(-d_safe)
        foot = feet[rows, f]
        dg_num = -(foot @ d_up)  # dg/dpitch = dg_num / d
        # a row error dv moves the foot by z dv / f along the camera's y, so d by up_y z dv / f:
        # the relative error, per unit of d (divided by d by the caller, with the person's mean d:
        # weights from each noisy d itself would favour the observations whose noise moved the feet
        # away from the horizon)
        px_scale = self.pixel_sigma_px * up[1] * foot[:, 2] / focal
        return g, dg_num, d_safe, px_scale, valid

    def solve(self) -> FloorEstimate | None:
        """Estimate the floor from the pooled frames; also stored in :attr:`estimate`.

        Warm-started from the last solution; every ``regrid_every`` solves, and whenever the pooled
        people grew by half since the last time, it also starts from the pitch grid and keeps the
        better optimum (an early estimate from few people can sit in a local optimum the warm start
        would never leave).

        Returns:
            The estimate, or None (and :attr:`estimate` None) with fewer than ``min_people``
            supporting people.
        """
        pooled = self._pooled()
        if pooled is None:
            self.estimate = None
            return None
        ids, feet, lift, log_h0, focal, n_frames = pooled
        person, inv = np.unique(ids, return_inverse=True)
        data = (feet, lift, log_h0, focal, inv, len(person))
        starts = [] if self._state is None else [np.array(self._state)]
        self._solves_since_grid += 1
        if (
            not starts
            or self._solves_since_grid >= self.regrid_every
            or len(person) >= 1.5 * self._grid_people
        ):
            grid = self._initial_state(*data)
            if grid is not None:
                starts.append(grid)
            self._solves_since_grid, self._grid_people = 0, len(person)
        if not starts:
            self.estimate = None
            return None
        results = [self._refine(x0, *data) for x0 in starts]
        # people mostly stand on the floor: an optimum that most of the best one's supporters
        # cannot stand on is degenerate however low its objective (it leaves their observations out
        # of the sum; on vtest a regrid found a 0.35 m high camera pitched up, supported by 2 of 80
        # people)
        support_of = [int(((r[2][:, -1] < 0.5) & r[3]).sum()) for r in results]
        plausible = [
            r for r, n in zip(results, support_of) if n >= MIN_SUPPORT_FRACTION * max(support_of)
        ]
        x, H, resp, has, _ = min(plausible, key=lambda r: r[-1])
        inliers = resp[:, -1] < 0.5
        support = int((inliers & has).sum())
        self.last_inliers = {int(p): bool(i) for p, i in zip(person, inliers & has)}
        # too little support: start the next solve afresh from the grid instead of from here
        self._state = (float(x[0]), float(x[1])) if support >= self.min_people else None
        if support < self.min_people:
            self.estimate = None
            return None
        cov = np.linalg.inv(H)
        h = float(np.exp(x[0]))
        self.estimate = FloorEstimate(
            camera_height_m=h,
            pitch_rad=float(x[1]),
            camera_height_sigma_m=h * math.sqrt(max(cov[0, 0], 0.0)),
            pitch_sigma_rad=math.sqrt(max(cov[1, 1], 0.0)),
            people=support,
            frames=n_frames,
            source="estimated",
        )
        return self.estimate

    def _refine(self, x, feet, lift, log_h0, focal, inv, J):
        """EM + Gauss-Newton from ``x`` = (log h, pitch).

        Returns:
            (x, Gauss-Newton Hessian (2, 2), responsibilities (J, C + 1), has (J,) people with a
            valid observation, negative log posterior at x).
        """
        x = np.array(x, np.float64)
        mu_p, sigma_p = self.pitch_prior
        H = np.eye(2)
        sigma2 = (
            self.sigma_obs**2
        )  # per-observation variance beyond the pixels: re-estimated below
        for _ in range(self.iterations):
            g, dg_num, d, px_scale, valid = self._log_scale(x[1], feet, lift, log_h0, focal)
            n_obs = np.bincount(inv, valid.astype(np.float64), J)[inv]
            # each person's mean d stands in for the frame's own d in the weights and the pitch
            # derivative: both would otherwise share the frame's pixel noise with g (errors in
            # variables: a still person's jitter alone would tilt the pitch); the mean is an
            # instrument free of that noise
            d_mean = np.where(
                valid, np.bincount(inv, valid * d, J)[inv] / np.maximum(n_obs, 1.0), -1.0
            )
            var_px = np.where(valid, (px_scale / d_mean) ** 2, 0.0)
            dg = dg_num / d_mean
            var_g = sigma2 + var_px
            omega = valid / var_g  # per-observation weights (inverse variance x Huber)
            # per-person means, Huber weights on the within-person scatter (two passes)
            for _ in range(2):
                n_j = np.bincount(inv, omega, J)
                gbar = np.bincount(inv, omega * g, J) / np.maximum(n_j, 1e-12)
                e = (g - gbar[inv]) / np.sqrt(var_g)
                huber = np.where(np.abs(e) <= 2.0, 1.0, 2.0 / np.maximum(np.abs(e), 1e-12))
                omega = valid * huber / var_g
            # the within-person noise from the scatter of repeated observations (a walking person's
            # feet, BlazePose's jitter): how much the within-person term may pin the pitch
            dof = valid * huber * (1.0 - 1.0 / np.maximum(n_obs, 1.0))
            if dof.sum() >= MIN_NOISE_DOF:
                scatter = dof * (
                    (g - gbar[inv]) ** 2 / (1.0 - 1.0 / np.maximum(n_obs, 1.0) + 1e-12) - var_px
                )
                sigma2 = float(np.clip(scatter.sum() / dof.sum(), *SIGMA_OBS_RANGE))
                var_g = sigma2 + var_px
                omega = valid * huber / var_g
            n_j = np.bincount(inv, omega, J)  # information of each person's mean log height
            has = n_j > 0
            gbar = np.bincount(inv, omega * g, J) / np.maximum(n_j, 1e-12)
            dgbar = np.bincount(inv, omega * dg, J) / np.maximum(n_j, 1e-12)
            # E-step: class responsibilities of each person's log height l + gbar
            y = x[0] + gbar  # (J,)
            var = self._var_c[None] + self.sigma_person**2 + 1.0 / np.maximum(n_j, 1e-12)[:, None]
            logp = (
                self._log_pi[None]
                - 0.5 * (y[:, None] - self._log_mu[None]) ** 2 / var
                - 0.5 * np.log(2 * np.pi * var)
            )
            all_logp = np.concatenate([logp, np.full((J, 1), self._log_outlier)], 1)
            norm = np.logaddexp.reduce(all_logp, axis=1)
            resp = np.exp(all_logp - norm[:, None]) * has[:, None]  # (J, C + 1)
            e_within = g - gbar[inv]
            # a person with no valid observation at this pitch (feet above the horizon) counts as
            # an outlier: otherwise a floor that nobody's feet can stand on (a camera pitched up,
            # 0.35 m high, on vtest) wins by leaving everyone out of the sum
            objective = (
                -(norm * has).sum()
                - self._log_outlier * (~has).sum()
                + 0.5 * (omega * e_within**2).sum()
                + 0.5 * ((x[1] - mu_p) / sigma_p) ** 2
            )
            # Gauss-Newton normal equations on (l, pitch)
            wc = resp[:, :-1] / var  # (J, C)
            r_between = y[:, None] - self._log_mu[None]
            H = np.zeros((2, 2))
            b = np.zeros(2)
            sw = wc.sum(1)
            H[0, 0] = sw.sum()
            H[0, 1] = H[1, 0] = (sw * dgbar).sum()
            H[1, 1] = (sw * dgbar**2).sum()
            rb = (wc * r_between).sum(1)
            b[0] = rb.sum()
            b[1] = (rb * dgbar).sum()
            de_within = dg - dgbar[inv]
            H[1, 1] += (omega * de_within**2).sum() + 1.0 / sigma_p**2
            b[1] += (omega * e_within * de_within).sum() + (x[1] - mu_p) / sigma_p**2
            step = -np.linalg.solve(H + 1e-9 * np.eye(2), b)
            step[1] = np.clip(
                step[1], -0.2, 0.2
            )  # damp big pitch jumps (the model is nonlinear in it)
            x = x + step
            x[1] = float(np.clip(x[1], -1.4, 1.4))
            if np.abs(step).max() < 1e-6:
                break
        return x, H, resp, has, objective

    def _initial_state(self, feet, lift, log_h0, focal, inv, J) -> np.ndarray | None:
        """(log h, pitch) from a pitch grid, log h = median over people of "everyone is an
        adult"."""
        adult = math.log(0.5 * (HEIGHT_PRIORS_M[3][0] + HEIGHT_PRIORS_M[4][0]))
        best, best_cost = None, np.inf
        for pitch in np.radians(np.arange(-40.0, 61.0, 5.0)):
            g, _, d, px_scale, valid = self._log_scale(pitch, feet, lift, log_h0, focal)
            var_g = self.sigma_obs**2 + (px_scale / d) ** 2
            n_j = np.bincount(inv, valid.astype(np.float64), J)
            has = n_j > 0
            if not has.any():
                continue
            gbar = np.bincount(inv, valid * g, J) / np.maximum(n_j, 1e-12)
            l0 = float(np.median(adult - gbar[has]))
            # robust cost (capped squared sigmas): each person's height vs the nearest class, the
            # scatter of their observations, the pitch prior
            z = (l0 + gbar[has, None] - self._log_mu[None]) ** 2 / self._var_c[None]
            e = ((g - gbar[inv]) ** 2 / var_g)[valid]
            # (people with no valid observation at this pitch pay the cap: fewer people must not
            # look better)
            cost = np.minimum(z.min(1), 9.0).sum() + np.minimum(e, 9.0).sum() + 9.0 * (~has).sum()
            cost += ((pitch - self.pitch_prior[0]) / self.pitch_prior[1]) ** 2
            if cost < best_cost:
                best, best_cost = np.array([l0, pitch]), cost
        return best


def relative_height_sigma(
    floor: FloorEstimate, feet_cam: np.ndarray, lift_m: np.ndarray
) -> np.ndarray:
    """(P,) relative 1-sigma of heights measured on ``floor`` (its camera height and pitch
    uncertainty).

    A person sized on the floor scales with the camera height (``dH / H = dh / h``) and, through
    where the floor meets their feet ray, with the pitch (``d log H / d pitch`` from the lower
    foot).

    Args:
        floor: the floor people were sized on.
        feet_cam: (P, F, 3) foot points of the sized bodies, camera frame, metres (NaN = unseen).
        lift_m: (P, F) their height above the soles, metres.
    """
    rel_h = floor.camera_height_sigma_m / floor.camera_height_m
    feet = np.asarray(feet_cam, np.float64)
    if len(feet) == 0:
        return np.zeros(0)
    up = floor.up_cam
    d_up = np.array([0.0, math.sin(floor.pitch_rad), -math.cos(floor.pitch_rad)])
    above = np.where(np.isfinite(feet).all(-1), np.nan_to_num(feet) @ up - lift_m, np.inf)
    f = np.argmin(above, 1)
    rows = np.arange(len(f))
    d = above[rows, f]
    with np.errstate(invalid="ignore", divide="ignore"):
        dg = np.where(np.isfinite(d) & (d < 0), -(np.nan_to_num(feet[rows, f]) @ d_up) / d, 0.0)
    return np.hypot(rel_h, dg * floor.pitch_sigma_rad)
