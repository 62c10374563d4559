"""Whole-frame DTO (spec dto §3): cues, grouping, closed-form solving and applying, for any body
mesh.

``refine(humans, K, depth=None, depth_kind="metric", masks=None, priors=None)`` has three modes:

* ``depth_kind="metric"`` (RGB-D, spec §10.2): the cue is the registered depth in metres
  (``uint16`` = mm). One group; (alpha, beta) = (1, 0) (or, with ``metric_fit_affine``, the tight
  prior alpha ~ N(1, 0.02^2), beta ~ N(0, 0.05^2)) and each person's scale is the closed-form
  soft-constraint optimum of §10.1, s_i = (w_i h_i mu_i + lambda_i z_i Z_i) / (w_i h_i^2 + lambda_i
  z_i^2), lambda_i = 1 / sigma_Z(D_i)^2 with sigma_Z(D) = sigma0 + k D^2 (sensor model) combined
  with the sample's standard error.
* ``depth_kind="relative"`` (d is affine in depth, e.g. 1/disparity) or ``"disparity"`` (a
  network's relative disparity, turned into d = 1/disparity): the official rules - near/far groups,
  alpha >= alpha_min, is_line, the bottom variant for the near group, the 2.1 m outlier loop, the
  ordering constraint between groups, s_i = (alpha d_i + beta) / z_i. Frames with fewer than two
  people are returned unchanged (the reference cannot solve them; ``mahmr_ros.dto.lite`` can, with
  its temporal prior).
* ``depth=None``: height prior only, s_i = mu_i / h_i (class prior; 1 in the no-gender mode).

Choices where the reference is silent or unsuited to a robot (all in ``DTOConfig``):

* Identity: output order = input order, people that cannot be refined (removal rules of §3.2,
  outliers, lone people) are returned unchanged with ``extras["dto"]["status"]`` saying why, unless
  ``drop_removed=True`` (the reference drops removed people).
* Faces for the z-buffer: the ``faces`` argument (the pipeline passes its estimator's topology),
  else the ``shape_model``'s faces when the vertex counts match; without faces the vertices are
  splatted (works for any mesh, e.g. Anny without topology). ``humans[0].extras["faces"]`` is a
  deprecated fallback for ``faces`` (``extras`` is informational only, see ``HumanEstimate``).
* The group test uses the pelvis depth instead of the model translation's z (the model origin is
  not on the body for every body model).
* The shape update (one SMPL coefficient, kid blend for children) needs a ``ShapeModel`` and an
  SMPL body; other bodies are only scaled along the ray and get ``height_m = s h``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from mahmr_ros.dto.apply import apply_scale
from mahmr_ros.dto.cues import MIN_AREA_FRACTION, MIN_VISIBLE_FRACTION, Cues, extract_cues
from mahmr_ros.dto.depth import disparity_to_cue, metric_depth_m
from mahmr_ros.dto.priors import PersonPrior, height_prior
from mahmr_ros.dto.shape import SECANT_STEPS, ShapeModel
from mahmr_ros.dto.solve import (
    ALPHA_MIN_DEFAULT,
    MAX_HEIGHT_M,
    GroupSolution,
    soft_scale,
    soft_weights,
    solve_group,
)
from mahmr_ros.types import HumanEstimate

DEPTH_KINDS = ("metric", "relative", "disparity")
SKIPPED_DEVIATION = (
    3.0  # an outlier-skipped person counts as deviation 3 in image acceptance (§3.6)
)


@dataclass
class DTOConfig:
    """Parameters of whole-frame DTO (defaults: the reference values of spec dto §5, or §10.2 for
    RGB-D).

    Attributes:
        max_side: render resolution bound for the cue z-buffer, pixels.
        vis_tol_m: vertex visibility tolerance, metres.
        min_area_fraction: removal rule, owned valid pixels below this fraction of the render
            (1/400).
        min_visible_fraction: removal rule, visible vertices below this fraction of V (500/6890).
        metric_erode_px: erosion of person regions (render pixels) against RGB-D flying pixels.
        use_gender: gender prior on (adults get mu = (h + mu_class) / 2) or off (sigma 0.073 around
            h).
        far_cue_threshold: d above which a person is far (0.02 in DA-V2-L raw units; None = scale
            rule only).
        far_scale: a person spanning less than this fraction of the short image side at 2 m height
            is far.
        alpha_min_default: alpha bound when no intra-body slope qualifies (raw cue units;
            recalibrate).
        use_slopes: alpha_min from the intra-body slopes (the "X condition").
        use_bottom: try the bottom variant for the near group.
        metric_fit_affine: RGB-D: fit (alpha, beta) under the tight prior below instead of fixing
            (1, 0). Off by default: the summed height priors of N people outweigh any fixed tight
            prior as N grows, so a biased height prior (e.g. children seen as adults) would pull a
            correct sensor off.
        metric_alpha_sigma, metric_beta_sigma: the tight RGB-D prior around (1, 0) (beta in
            metres).
        sensor_sigma0_m, sensor_k_per_m: RGB-D noise model sigma_Z(D) = sigma0 + k D^2.
        drop_removed: drop people that the removal rules reject (reference) instead of returning
            them as is.
        shape_steps: secant steps of the beta update (1 = reference).
    """

    max_side: int | None = 512
    vis_tol_m: float = 0.01
    min_area_fraction: float = MIN_AREA_FRACTION
    min_visible_fraction: float = MIN_VISIBLE_FRACTION
    metric_erode_px: int = 1
    use_gender: bool = True
    far_cue_threshold: float | None = 0.02
    far_scale: float = 0.25
    alpha_min_default: float = ALPHA_MIN_DEFAULT
    use_slopes: bool = True
    use_bottom: bool = True
    metric_fit_affine: bool = False
    metric_alpha_sigma: float = 0.02
    metric_beta_sigma: float = 0.05
    sensor_sigma0_m: float = 0.01
    sensor_k_per_m: float = 1.5e-3
    drop_removed: bool = False
    shape_steps: int = SECANT_STEPS
    extra: dict = field(default_factory=dict)


def resolve_priors(humans: list[HumanEstimate], priors) -> list[PersonPrior]:
    """One ``PersonPrior`` per person from ``priors``.

    ``priors`` is None, a list aligned with ``humans`` or a dict keyed by ``track_id``; entries may
    be ``PersonPrior``, a class id or None. Missing entries fall back to the estimate's
    ``age_class`` and, when the estimator measured the height (``height_sigma_m`` set), to that
    known height.
    """
    out = []
    if priors is not None and not isinstance(priors, (list, tuple, dict)):
        raise ValueError(
            f"[dto.refine] priors must be None, a list or a dict by track_id, got {type(priors)}"
        )
    if isinstance(priors, (list, tuple)) and len(priors) != len(humans):
        raise ValueError(f"[dto.refine] {len(priors)} priors for {len(humans)} people")
    for i, h in enumerate(humans):
        p = priors[i] if isinstance(priors, (list, tuple)) else (priors or {}).get(h.track_id)
        if p is None and h.height_sigma_m is not None:
            p = PersonPrior(h.age_class, height_m=h.height_m, height_sigma_m=h.height_sigma_m)
        elif p is None:
            p = PersonPrior(age_class=h.age_class)
        elif not isinstance(p, PersonPrior):
            p = PersonPrior(age_class=int(p))
        out.append(p)
    return out


def prior_moments(
    humans, person_priors, use_gender: bool
) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """(mu, sigma, classes, has_height) per person.

    (P,) height prior mean and std in metres, the resolved class, and whether the estimate carries
    a usable height (people without one cannot be refined and are skipped, never scaled).
    """
    h = np.array([hm.height_m for hm in humans], np.float64)
    has_height = np.isfinite(h) & (h > 0)
    h = np.where(has_height, h, 1.0)  # placeholder for people that are skipped
    classes = [p.resolved_class() for p in person_priors]
    mu, sigma = height_prior(h, classes, use_gender)
    for i, p in enumerate(person_priors):  # a known metric height (e.g. a registered user) wins
        if p.height_m is not None:
            mu[i], sigma[i] = p.height_m, p.height_sigma_m
    return mu, sigma, classes, has_height


def _check_inputs(humans, K, depth_kind):
    if depth_kind not in DEPTH_KINDS:
        raise ValueError(
            f"[dto.refine] depth_kind must be one of {DEPTH_KINDS}, got '{depth_kind}'"
        )
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"[dto.refine] K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}"
        )
    for i, h in enumerate(humans):
        if not isinstance(h, HumanEstimate):
            raise ValueError(
                f"[dto.refine] humans[{i}] is a {type(h).__name__}, expected HumanEstimate"
            )
        if h.vertices.ndim != 2 or h.vertices.shape[1] != 3 or not np.all(np.isfinite(h.vertices)):
            raise ValueError(
                f"[dto.refine] humans[{i}] ('{h.track_id}') needs finite (V, 3) vertices"
            )
    if len({len(h.vertices) for h in humans}) > 1:
        raise ValueError(
            "[dto.refine] all people of a frame must share one body model (vertex counts "
            f"{sorted({len(h.vertices) for h in humans})})"
        )
    return K


def _faces_for(humans, faces, shape_model):
    if faces is not None:
        return np.asarray(faces, np.int64)
    f = humans[0].extras.get("faces")
    if f is not None:  # deprecated: extras is informational; kept for callers of the old contract
        warnings.warn(
            "[dto.refine] faces in HumanEstimate.extras['faces'] are deprecated: pass refine(..., "
            "faces=)",
            DeprecationWarning,
            stacklevel=3,
        )
        return np.asarray(f, np.int64)
    if (
        shape_model is not None
        and shape_model.faces is not None
        and shape_model.v_template.shape[0] == len(humans[0].vertices)
    ):
        return shape_model.faces
    return None


def refine(
    humans: list[HumanEstimate],
    K,
    depth=None,
    depth_kind: str = "metric",
    masks=None,
    priors=None,
    *,
    faces=None,
    shape_model: ShapeModel | None = None,
    config: DTOConfig | None = None,
    device=None,
) -> list[HumanEstimate]:
    """Whole-frame DTO (see the module docstring for the modes and choices).

    Args:
        humans: P initial estimates of one frame (camera frame, metres; one body model).
        K: (3, 3) intrinsics of the image the depth map is registered to, pixels.
        depth: None, or an (H, W) map: metric depth (float m, or uint16 mm), relative cue, or
            disparity.
        depth_kind: "metric", "relative" or "disparity".
        masks: optional (P, H, W) bool instance masks, same order as ``humans``.
        priors: None, list (aligned) or dict by ``track_id`` of ``PersonPrior`` / class ids.
        faces: (F, 3) faces of the body mesh (see module docstring for the fallbacks).
        shape_model: SMPL(-A) shape space for the beta update.
        config: DTOConfig (defaults if None).
        device: torch device for the z-buffer (default CPU).

    Returns:
        New estimates (input order; see ``DTOConfig.drop_removed``), with ``dto_scale``,
        ``height_m``, ``depth_sigma_m``, ``dto_height_z``, ``age_class`` and ``extras["dto"]``
        (mode, status, group, alpha, beta, frame acceptance, per-stage ``timings_ms``) filled for
        refined people.

    Raises:
        ValueError: bad K, depth, masks, depth_kind, vertices or heights (the message names the
            input).
    """
    cfg = config or DTOConfig()
    humans = list(humans)
    K = _check_inputs(humans, K, depth_kind)
    if not humans:
        return []
    person_priors = resolve_priors(humans, priors)
    mu, sigma, classes, has_height = prior_moments(humans, person_priors, cfg.use_gender)
    if depth is None:
        return _prior_only(humans, mu, sigma, classes, has_height, shape_model, cfg)
    t0 = time.perf_counter()  # "cues" includes converting the depth map
    if depth_kind == "metric":
        cue_map = metric_depth_m(depth)
    elif depth_kind == "disparity":
        cue_map = disparity_to_cue(depth)
    else:
        cue_map = np.asarray(depth, np.float32)
    cues = extract_cues(
        np.stack([h.vertices for h in humans]),
        K,
        cue_map,
        faces=_faces_for(humans, faces, shape_model),
        masks=masks,
        max_side=cfg.max_side,
        vis_tol_m=cfg.vis_tol_m,
        min_area_fraction=cfg.min_area_fraction,
        min_visible_fraction=cfg.min_visible_fraction,
        erode_px=cfg.metric_erode_px if depth_kind == "metric" else 0,
        device=device,
    )
    for i in np.flatnonzero(~has_height):
        cues.removed[i] = "no_height"
    t1 = time.perf_counter()
    if depth_kind == "metric":
        plan = _solve_metric(humans, cues, mu, sigma, cfg)
    else:
        plan = _solve_relative(humans, cues, mu, sigma, K, cue_map.shape, cfg)
    t2 = time.perf_counter()
    out = _apply_plan(humans, plan, cues, mu, sigma, classes, shape_model, cfg, depth_kind)
    # Per-stage wall times of this frame (shared by every person's report, like the rest of
    # ``frame``).
    plan.frame["timings_ms"] = {"cues": (t1 - t0) * 1e3, "solve": (t2 - t1) * 1e3,
                                "apply": (time.perf_counter() - t2) * 1e3}  # fmt: skip
    return out


def _prior_only(humans, mu, sigma, classes, has_height, shape_model, cfg) -> list[HumanEstimate]:
    out = []
    for i, h in enumerate(humans):
        if not has_height[i]:
            out.append(
                h.replace(
                    extras={**h.extras, "dto": {"mode": "prior", "status": "removed:no_height"}}
                )
            )
            continue
        s = mu[i] / h.height_m
        sigma_t = float(np.linalg.norm(h.pelvis)) * sigma[i] / h.height_m
        report = {
            "mode": "prior",
            "status": "refined",
            "mu": float(mu[i]),
            "sigma": float(sigma[i]),
        }
        out.append(apply_scale(h, s, shape_model=shape_model, age_class=classes[i],
                               depth_sigma_m=sigma_t, height_z=0.0, shape_steps=cfg.shape_steps,
                               report=report))  # fmt: skip
    return out


@dataclass
class _Plan:
    """Per-person decisions: scale (NaN = unchanged), sigma of the scale, group name, status, frame
    report."""

    scale: np.ndarray
    sigma_s: np.ndarray
    group: list
    status: list
    frame: dict


def _new_plan(P, cues: Cues) -> _Plan:
    status = [f"removed:{r}" if r else "unchanged" for r in cues.removed]
    return _Plan(np.full(P, np.nan), np.zeros(P), [""] * P, status, {})


def _solve_metric(humans, cues: Cues, mu, sigma, cfg) -> _Plan:
    """RGB-D: tight prior on (alpha, beta), soft per-person depth constraint (spec §10.1-10.2)."""
    P = len(humans)
    plan = _new_plan(P, cues)
    idx = np.flatnonzero(cues.valid)
    if len(idx) == 0:
        return plan
    h = np.array([humans[i].height_m for i in idx])
    d, z = cues.d[idx], cues.z[idx]
    sem = cues.depth_std[idx] / np.sqrt(np.maximum(cues.n_inliers[idx], 1))
    sigma_z = np.hypot(sem, cfg.sensor_sigma0_m + cfg.sensor_k_per_m * d**2)
    lam = 1.0 / sigma_z**2
    w = 1.0 / sigma[idx] ** 2
    w_soft = soft_weights(w, h, z, lam)  # s_i eliminated: the reference objective with w~_i
    if (
        cfg.metric_fit_affine
    ):  # (alpha, beta) near (1, 0) under the tight prior, absorbing sensor bias
        precision = np.diag([cfg.metric_alpha_sigma**-2, cfg.metric_beta_sigma**-2])
        alpha, beta, info = solve_group(
            d, z, h, mu[idx], sigma[idx], cues.slope[idx], cues.corr[idx], np.zeros(len(idx)),
            weights=w_soft, prior=(np.array([1.0, 0.0]), precision), use_slopes=False,
            alpha_min_default=-1e6,
        )  # fmt: skip
        active = info.active
    else:
        alpha, beta = 1.0, 0.0
        active = np.ones(len(idx), bool)
    s, var_s = soft_scale(w, h, mu[idx], z, alpha * d + beta, lam)
    sigma_s = np.sqrt(var_s)
    for j, i in enumerate(idx):
        # Guards: a non-positive scale, or a metric height above 2.1 m (depth from something else
        # than the person, e.g. an occluder missing from the masks), leaves the person unchanged.
        if active[j] and np.isfinite(s[j]) and s[j] > 0 and s[j] * h[j] <= MAX_HEIGHT_M:
            plan.scale[i], plan.sigma_s[i], plan.group[i], plan.status[i] = (
                s[j],
                sigma_s[j],
                "metric",
                "refined",
            )
        else:
            plan.status[i] = "outlier"
    ok = ~np.isnan(plan.scale[idx])
    dev = float(np.mean(np.abs(s[ok] * h[ok] - mu[idx][ok]) / sigma[idx][ok])) if ok.any() else 0.0
    plan.frame = {"alpha": alpha, "beta": beta, "n_opt": int(ok.sum()), "dev": dev,
                  "n_outliers": int(len(idx) - ok.sum())}  # fmt: skip
    return plan


def _solve_relative(humans, cues: Cues, mu, sigma, K, hw, cfg) -> _Plan:
    """Relative cue: the reference's near/far groups and rules (spec §3.3-3.5)."""
    P = len(humans)
    plan = _new_plan(P, cues)
    valid = cues.valid
    h = np.array([hm.height_m for hm in humans])
    if valid.sum() <= 1:  # spec §3.0: a frame with <= 1 person is not optimised
        plan.frame = {"is_optimize": False, "mean_dev": 0.0}
        return plan
    tz = np.array([max(float(hm.pelvis[2]), 1e-6) for hm in humans])
    size = 2.0 * K[1, 1] / (tz * min(hw))
    far = size < cfg.far_scale
    if cfg.far_cue_threshold is not None:
        far |= cues.d > cfg.far_cue_threshold
    groups = {"near": np.flatnonzero(valid & ~far), "far": np.flatnonzero(valid & far)}
    sols: dict[str, tuple[GroupSolution, np.ndarray, np.ndarray]] = {}
    for name, idx in groups.items():
        if len(idx) == 0:
            continue
        variants = [(cues.d[idx], cues.z[idx])]
        if name == "near" and cfg.use_bottom:
            variants.append((cues.d_bot[idx], cues.z_bot[idx]))
        best = None
        for d, z in variants:
            _, _, info = solve_group(
                d, z, h[idx], mu[idx], sigma[idx], cues.slope[idx], cues.corr[idx],
                cues.depth_std[idx], alpha_min_default=cfg.alpha_min_default,
                use_slopes=cfg.use_slopes,
            )  # fmt: skip
            if best is None or (info.n_opt >= best[0].n_opt and info.dev < best[0].dev):
                best = (info, d, z)
        sols[name] = best
    if (
        "near" in sols and "far" in sols and len(groups["far"]) >= 2
    ):  # the nearest far person stays behind
        near, dn, _ = sols["near"]
        far_sol, df, zf = sols["far"]
        if not far_sol.group_skipped:
            bound = dn.max() * near.alpha + near.beta - df.min() * far_sol.alpha
            if bound > far_sol.beta:
                far_sol.beta = float(bound)
                H = h[groups["far"]] * (far_sol.alpha * df + far_sol.beta) / zf
                newly = far_sol.active & (H > MAX_HEIGHT_M)
                far_sol.active &= ~newly
                far_sol.skipped |= newly
                far_sol.n_opt = max(0, far_sol.n_opt - int(newly.sum()))
    deviation, optimised = [], False
    for name, (info, d, z) in sols.items():
        idx = groups[name]
        cov = _covariance(info)
        for j, i in enumerate(idx):
            if not info.active[j]:
                plan.status[i] = "group_skipped" if info.group_skipped else "outlier"
                continue
            s = (info.alpha * d[j] + info.beta) / z[j]
            if not (np.isfinite(s) and s > 0):
                plan.status[i] = (
                    "invalid_scale"  # guard: a map that puts the person behind the camera
                )
                continue
            v = np.array([d[j], 1.0])
            plan.scale[i] = s
            plan.sigma_s[i] = float(np.sqrt(max(v @ cov @ v, 0.0))) / z[j]
            plan.group[i], plan.status[i] = name, "refined"
        deviation += [info.dev] * info.n_opt + [SKIPPED_DEVIATION] * info.n_outliers
        optimised |= info.n_opt >= 2
        plan.frame[name] = {"alpha": info.alpha, "beta": info.beta, "n_opt": info.n_opt,
                            "dev": info.dev, "forced": info.forced,
                            "alpha_min": info.alpha_min}  # fmt: skip
    mean_dev = float(np.mean(deviation)) if deviation else 0.0
    plan.frame.update(is_optimize=bool(optimised and mean_dev < 1.5), mean_dev=mean_dev)
    return plan


def _covariance(info: GroupSolution) -> np.ndarray:
    """(2, 2) covariance of (alpha, beta) from the normal matrix; only beta varies when alpha was
    forced."""
    M = info.hessian
    if info.forced:
        return np.diag([0.0, 1.0 / M[1, 1] if M[1, 1] > 0 else 0.0])
    det = M[0, 0] * M[1, 1] - M[0, 1] ** 2
    return np.linalg.inv(M) if det > 0 else np.zeros((2, 2))


def _apply_plan(
    humans, plan: _Plan, cues: Cues, mu, sigma, classes, shape_model, cfg, mode
) -> list:
    out = []
    for i, h in enumerate(humans):
        report = {"mode": mode, "status": plan.status[i], "group": plan.group[i],
                  "frame": plan.frame, "d": float(cues.d[i]), "z": float(cues.z[i]),
                  "n_visible": int(cues.n_visible[i])}  # fmt: skip
        if np.isnan(plan.scale[i]):
            if cfg.drop_removed and plan.status[i].startswith("removed"):
                continue
            extras = dict(h.extras)
            extras["dto"] = report
            out.append(
                h.replace(
                    extras=extras, age_class=classes[i] if classes[i] is not None else h.age_class
                )
            )
            continue
        s = plan.scale[i]
        height_z = abs(s * h.height_m - mu[i]) / sigma[i]
        sigma_t = float(np.linalg.norm(h.pelvis)) * plan.sigma_s[i]
        out.append(apply_scale(h, s, shape_model=shape_model, age_class=classes[i],
                               depth_sigma_m=sigma_t, height_z=height_z,
                               shape_steps=cfg.shape_steps, report=report))  # fmt: skip
    return out
