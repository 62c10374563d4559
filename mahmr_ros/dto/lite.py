"""DTO-Lite: the per-frame variant of DTO (spec dto §10), with per-track temporal smoothing.

Per frame, for P people (any body mesh; faces are not needed):

1. Cues from a fixed vertex subset (every k-th vertex, about ``num_samples``, uniform over the vertex
   list): project, build a low-resolution z-buffer (``render_scale`` of the image) by scatter-min splatting
   of all people's samples, keep a sample if it is visible (z <= zbuf + ``vis_tol_m``), inside the person's
   eroded mask (when masks are given; the mask is tested at the sample pixel and at +-``erode_px`` pixels)
   and its depth pixel is valid. After an IQR trim of the depth samples, ``z_i`` and ``D_i`` are the means of
   the kept samples' rendered and measured depth, and the sample spread gives the cue's standard error.
2. Removal: visible samples below 500/6890 of the subset, or fewer than ``min_samples`` valid depths.
3. Solve (spec §10.1): metric depth -> (alpha, beta) = (1, 0) and the closed-form soft scale
   s_i = (w h mu + lambda z Z) / (w h^2 + lambda z^2); relative cue -> one group with free (alpha, beta)
   through the official solver with the soft weights w~_i and a temporal Gaussian prior on (alpha, beta) (a
   constant-position Kalman filter, so single-person frames are solvable and the map is stable); no depth ->
   the height prior only. A floor (``floor=``, e.g. the offline estimator's crowd estimate) is one more
   metric cue (:mod:`mahmr_ros.dto.floor`): the scale that stands a person's soles on it, fused with the
   height prior by precision; depth, when a person has a depth reading, wins (the floor only fills in for
   people the depth cue removed), and people whose height was measured (a known-height prior, which for the
   offline estimator already came from the floor) do not use it twice.
4. Temporal: a 1-D Kalman filter per ``track_id`` on the person's metric height (constant for a person), fed
   with s_i h_i and its variance; the output scale is H_filtered / h_i. A tracked person without a usable cue
   this frame (occluded, out of the depth image) keeps the track's metric height ("track" status).
5. Apply (``mahmr_ros.dto.apply``): scale along the ray (+ SMPL shape update when a shape model is given).

The CPU path is numpy (``np.minimum.at`` scatter-min): torch's per-operation overhead alone is about
1.5 ms for this splat on CPU, most of the 2 ms budget. With ``device="cuda"`` the splat runs on the package
rasterizer (``mahmr_ros.render.splat_points``) instead; both paths give the same z-buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mahmr_ros.dto.apply import apply_scale
from mahmr_ros.dto.cues import MIN_VISIBLE_FRACTION
from mahmr_ros.dto.depth import check_metric_image, metric_values_m
from mahmr_ros.dto.floor import floor_scale_cue, fuse_scale
from mahmr_ros.dto.refine import DEPTH_KINDS, prior_moments, resolve_priors
from mahmr_ros.dto.shape import SECANT_STEPS, ShapeModel
from mahmr_ros.dto.solve import MAX_HEIGHT_M, soft_scale, soft_weights, solve_group
from mahmr_ros.types import FloorEstimate, HumanEstimate


@dataclass
class LiteConfig:
    """Parameters of DTO-Lite.

    Attributes:
        num_samples: vertex subset size per person (~1000, spec §10.3).
        render_scale: z-buffer resolution relative to the image (1/4).
        vis_tol_m: visibility tolerance against the splatted z-buffer, metres (spec: 1-5 cm).
        erode_px: mask erosion (image pixels) tested at each sample (RGB-D flying pixels at silhouettes).
        iqr_factor: IQR trim of the depth samples.
        min_visible_fraction: removal, visible samples below this fraction of the subset.
        min_samples: removal, fewer valid depth samples than this.
        use_gender: gender prior on (reference default) or the no-gender mode.
        sensor_sigma0_m, sensor_k_per_m: RGB-D noise sigma_Z(D) = sigma0 + k D^2, metres.
        relative_sigma: relative cue model error, as a fraction of Z (a soft constraint; small = DTO).
        alpha_min: lower bound on alpha for the relative cue (cue units; a nearer person has a smaller cue).
        ab_process_sigma: per-frame random walk of (alpha, beta) in the temporal prior (static camera).
        height_process_sigma_m: per-frame random walk of a track's metric height.
        track_ttl: frames a track's state is kept without being seen.
        shape_steps: steps of the SMPL beta update (1 = reference secant step).
    """

    num_samples: int = 1000
    render_scale: float = 0.25
    vis_tol_m: float = 0.05
    erode_px: int = 2
    iqr_factor: float = 1.5
    min_visible_fraction: float = MIN_VISIBLE_FRACTION
    min_samples: int = 20
    use_gender: bool = True
    sensor_sigma0_m: float = 0.01
    sensor_k_per_m: float = 1.5e-3
    relative_sigma: float = 0.01
    alpha_min: float = 0.0
    ab_process_sigma: tuple[float, float] = (0.02, 0.05)
    height_process_sigma_m: float = 0.005
    track_ttl: int = 30
    shape_steps: int = SECANT_STEPS


@dataclass
class _Track:
    height_m: float
    var: float
    last_seen: int


@dataclass
class LiteCues:
    """Per-person cue means from the vertex subset: (P,) arrays, NaN where removed."""

    d: np.ndarray
    z: np.ndarray
    sem: np.ndarray
    n_valid: np.ndarray
    n_visible: np.ndarray
    removed: list = field(default_factory=list)


def _sample_stride(V: int, S: int) -> int:
    """Stride of the vertex subset: every k-th vertex gives ~S samples as a view (no gather per person)."""
    return max(1, V // max(S, 1))


def _project(pts: np.ndarray, K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float pixel coordinates (u, v) and depth z of (N, 3) points (python-float intrinsics keep float32)."""
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
    u, v, z = _project(pts, K)
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


def lite_cues(
    verts: np.ndarray,
    K,
    depth,
    depth_kind: str = "metric",
    masks=None,
    cfg: LiteConfig | None = None,
    device="cpu",
) -> LiteCues:
    """DTO-Lite cue extraction (spec §10.3 steps 2-3) for (P, S, 3) sample vertices.

    Only the sampled pixels of the depth image are read and converted (no full-image pass).

    Args:
        verts: (P, S, 3) float32 sample vertices, metres, camera frame.
        K: (3, 3) intrinsics, pixels.
        depth: (H, W) raw map: metric (uint16 mm or float m), relative cue, or disparity (``depth_kind``).
        depth_kind: "metric", "relative" or "disparity".
        masks: optional (P, H, W) bool instance masks.
        cfg: LiteConfig.
        device: z-buffer device ("cpu" = numpy).

    Returns:
        LiteCues.

    Raises:
        ValueError: bad depth map or masks.
    """
    cfg = cfg or LiteConfig()
    P, S = verts.shape[:2]
    if depth_kind == "metric":
        raw, unit = check_metric_image(depth)
    else:
        raw = np.asarray(depth)
        if raw.ndim == 3 and raw.shape[0] == 1:
            raw = raw[0]
        if raw.ndim != 2 or raw.size == 0 or not np.issubdtype(raw.dtype, np.number):
            raise ValueError(f"[dto.lite] depth must be a numeric (H, W) map, got {raw.shape} {raw.dtype}")
    H, W = raw.shape
    if masks is not None:
        masks = np.asarray(masks, bool)
        if masks.shape != (P, H, W):
            raise ValueError(
                f"[dto.lite] masks must be (P={P}, H={H}, W={W}) like the depth map, got {masks.shape}"
            )
    pts = verts.reshape(-1, 3)
    zbuf, lin, _ = splat_zbuffer(pts, K, (H, W), cfg.render_scale, device)
    u, v, z = _project(pts, K)
    visible = (lin >= 0) & (z <= zbuf[np.maximum(lin, 0)] + cfg.vis_tol_m)
    uf, vf = np.rint(u).astype(np.int64), np.rint(v).astype(np.int64)
    inside = visible & (uf >= 0) & (uf < W) & (vf >= 0) & (vf < H)
    # np.minimum/maximum rather than np.clip: the clip wrapper costs more than the work on 10k samples.
    uc, vc = np.minimum(np.maximum(uf, 0), W - 1), np.minimum(np.maximum(vf, 0), H - 1)
    if masks is not None:  # flat indices: one gather per offset instead of 3-array fancy indexing
        flat_masks = masks.reshape(-1)
        base = np.repeat(np.arange(P) * (H * W), S)
        e = cfg.erode_px
        for du, dv in ((0, 0), (e, 0), (-e, 0), (0, e), (0, -e)) if e > 0 else ((0, 0),):
            vv = vc if dv == 0 else np.minimum(np.maximum(vc + dv, 0), H - 1)
            uu = uc if du == 0 else np.minimum(np.maximum(uc + du, 0), W - 1)
            inside &= flat_masks[base + vv * W + uu]
    samples = raw.reshape(-1)[vc * W + uc]
    if depth_kind == "metric":
        values = metric_values_m(samples, unit)
    elif depth_kind == "disparity":
        disp = samples.astype(np.float32)
        nonpos = np.isfinite(disp) & (disp <= 0)
        if nonpos.any():  # spec §2.4: zeros take the smallest positive disparity of the image
            pos = raw[np.isfinite(raw) & (raw > 0)]
            disp[nonpos] = pos.min() if pos.size else np.nan
        with np.errstate(divide="ignore"):
            values = 1.0 / disp
    else:
        values = samples.astype(np.float32)
    D = np.where(inside, values, np.nan).reshape(P, S)
    D[~(D > 0)] = np.nan  # invalid pixels (NaN, 0, negative)
    Z = np.where(np.isfinite(D), z.reshape(P, S), np.nan)
    n_visible = visible.reshape(P, S).sum(1)
    # IQR trim per person via one sort (NaN last): quartiles by index, much cheaper than nanpercentile.
    n = np.isfinite(D).sum(1)
    srt = np.sort(D, axis=1)
    rows = np.arange(P)
    q1 = srt[rows, np.clip(((n - 1) * 0.25).round().astype(int), 0, S - 1)]
    q3 = srt[rows, np.clip(((n - 1) * 0.75).round().astype(int), 0, S - 1)]
    iqr = q3 - q1
    lo, hi = np.maximum(q1 - cfg.iqr_factor * iqr, 0.0), q3 + cfg.iqr_factor * iqr
    keep = (D >= lo[:, None]) & (D <= hi[:, None])
    n_keep = keep.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_mean = np.where(keep, D, 0).sum(1) / n_keep
        z_mean = np.where(keep, Z, 0).sum(1) / n_keep
        var = np.where(keep, (D - d_mean[:, None]) ** 2, 0).sum(1) / n_keep
    removed = []
    for p in range(P):
        if n_visible[p] < cfg.min_visible_fraction * S:
            removed.append("visible")
        elif n_keep[p] < cfg.min_samples:
            removed.append("samples")
        else:
            removed.append(None)
    bad = np.array([r is not None for r in removed], bool)
    d_mean[bad], z_mean[bad] = np.nan, np.nan
    return LiteCues(d_mean, z_mean, np.sqrt(var / np.maximum(n_keep, 1)), n_keep, n_visible, removed)


class DTOLite:
    """Stateful per-frame DTO (spec §10): call once per frame with the frame's people (stable ``track_id``).

    Args:
        config: LiteConfig.
        shape_model: optional SMPL(-A) shape space (beta update for SMPL bodies).
        device: "cpu" (numpy splat) or a torch device for the package rasterizer.
    """

    def __init__(self, config: LiteConfig | None = None, shape_model: ShapeModel | None = None, device="cpu"):
        self.config = config or LiteConfig()
        self.shape_model = shape_model
        self.device = device
        self.frame = 0
        self.tracks: dict[str, _Track] = {}
        self.ab: np.ndarray | None = None  # filtered (alpha, beta) of the relative cue
        self.ab_cov: np.ndarray | None = None
        self._subset: dict[int, int] = {}
        self.last_timings_ms: dict[str, float] = {}

    def reset(self) -> None:
        """Forget all tracks and the (alpha, beta) filter (e.g. after the camera moved)."""
        self.tracks.clear()
        self.ab = self.ab_cov = None

    def __call__(
        self,
        humans: list[HumanEstimate],
        K,
        depth=None,
        depth_kind: str = "metric",
        masks=None,
        priors=None,
        floor: FloorEstimate | None = None,
        image_hw: tuple[int, int] | None = None,
    ) -> list[HumanEstimate]:
        """Refine one frame (arguments as ``mahmr_ros.dto.refine``); returns new estimates in input order.

        Args (beyond ``refine``'s):
            floor: the floor people stand on (camera height and pitch with sigmas), a cue for people without
                a depth reading or measured height; None = no floor cue.
            image_hw: (H, W) of the image; needed with ``floor`` when ``depth`` is None (the floor cues only
                people whose feet project inside the image).
        """
        import time

        t0 = time.perf_counter()
        cfg = self.config
        self.frame += 1
        if depth_kind not in DEPTH_KINDS:
            raise ValueError(f"[dto.lite] depth_kind must be one of {DEPTH_KINDS}, got '{depth_kind}'")
        K = np.asarray(K, np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"[dto.lite] K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}")
        humans = list(humans)
        self._prune()
        if not humans:
            return []
        Vs = {len(h.vertices) for h in humans}
        if len(Vs) > 1:
            raise ValueError(f"[dto.lite] all people must share one body model (vertex counts {sorted(Vs)})")
        V = Vs.pop()
        if V not in self._subset:
            self._subset[V] = _sample_stride(V, cfg.num_samples)
        stride = self._subset[V]
        verts = np.stack([h.vertices[::stride] for h in humans]).astype(np.float32, copy=False)
        if not np.all(np.isfinite(verts)):
            raise ValueError("[dto.lite] non-finite vertices in the estimates")
        person_priors = resolve_priors(humans, priors)
        mu, sigma, classes, has_height = prior_moments(humans, person_priors, cfg.use_gender)
        h = np.array([hm.height_m if ok else 1.0 for hm, ok in zip(humans, has_height)])
        floor_s = floor_sigma = np.full(len(humans), np.nan)
        if floor is not None:
            if image_hw is None and depth is None:
                raise ValueError("[dto.lite] a floor cue needs image_hw (H, W) when no depth map is given")
            hw = image_hw if image_hw is not None else np.asarray(depth).shape[-2:]
            floor_s, floor_sigma = floor_scale_cue(humans, floor, K, hw)
            measured = np.array([p.height_m is not None for p in person_priors], bool)
            floor_s = np.where(measured | ~has_height, np.nan, floor_s)
        P = len(humans)
        s = np.full(P, np.nan)
        var_s = np.zeros(P)
        status = ["unchanged"] * P
        t1 = time.perf_counter()
        if depth is None:
            s, var_s = fuse_scale(mu / h, (sigma / h) ** 2, floor_s, floor_sigma)
            status = ["floor" if np.isfinite(f) else "prior" for f in floor_s]
            cues = None
        else:
            cues = lite_cues(verts, K, depth, depth_kind, masks, cfg, self.device)
            t1 = time.perf_counter()
            for i in np.flatnonzero(~has_height):
                cues.removed[i] = "no_height"
            ok = np.array([r is None for r in cues.removed], bool)
            status = [f"removed:{r}" if r else "refined" for r in cues.removed]
            if ok.any():
                if depth_kind == "metric":
                    Z = cues.d[ok]
                    sigma_z = np.hypot(cues.sem[ok], cfg.sensor_sigma0_m + cfg.sensor_k_per_m * Z**2)
                else:
                    Z, sigma_z = self._relative_map(cues, ok, h, mu, sigma, status)
                lam = 1.0 / sigma_z**2
                w = 1.0 / sigma[ok] ** 2
                z, hh = cues.z[ok], h[ok]
                s[ok], var_s[ok] = soft_scale(w, hh, mu[ok], z, Z, lam)
                bad = ok & ~(np.isfinite(s) & (s > 0) & (s * h <= MAX_HEIGHT_M))
                for i in np.flatnonzero(bad):  # keeps a more specific reason (unanchored, group_skipped)
                    status[i] = "outlier" if status[i] == "refined" else status[i]
                s[bad] = np.nan
            # no depth reading (removed, out of range, outlier) but feet on the floor: the floor cue
            fill = np.isnan(s) & np.isfinite(floor_s)
            if fill.any():
                s[fill], var_s[fill] = fuse_scale(
                    mu[fill] / h[fill], (sigma[fill] / h[fill]) ** 2, floor_s[fill], floor_sigma[fill]
                )
                for i in np.flatnonzero(fill):
                    status[i] = "floor"
        t2 = time.perf_counter()
        out = []
        for i, hm in enumerate(humans):
            si, vi = self._smooth(hm.track_id, s[i], var_s[i], h[i], has_height[i])
            if si is None:
                out.append(hm.replace(extras={**hm.extras, "dto": {"mode": "lite", "status": status[i]}}))
                continue
            if np.isnan(s[i]):
                status[i] = "track"
            report = {"mode": "lite", "status": status[i], "raw_scale": float(s[i])}
            out.append(apply_scale(hm, si, shape_model=self.shape_model, age_class=classes[i],
                                   depth_sigma_m=float(np.linalg.norm(hm.pelvis)) * np.sqrt(vi),
                                   quality=abs(si * h[i] - mu[i]) / sigma[i], shape_steps=cfg.shape_steps,
                                   report=report))  # fmt: skip
        t3 = time.perf_counter()
        self.last_timings_ms = {"cues": (t1 - t0) * 1e3, "solve": (t2 - t1) * 1e3, "apply": (t3 - t2) * 1e3}
        return out

    def _relative_map(self, cues: LiteCues, ok, h, mu, sigma, status):
        """Z = alpha d + beta for the usable people (one group, temporal prior), and the model sigma of Z."""
        cfg = self.config
        d, z = cues.d[ok], cues.z[ok]
        prior = None
        if self.ab is not None:
            cov = self.ab_cov + np.diag(np.square(cfg.ab_process_sigma))
            prior = (self.ab, np.linalg.inv(cov))
        if prior is None and ok.sum() < 2:  # nothing to anchor a single person's map to yet
            for i in np.flatnonzero(ok):
                status[i] = "unanchored"
            return np.full(int(ok.sum()), np.nan), np.ones(int(ok.sum()))
        alpha_guess = self.ab[0] if self.ab is not None else 1.0
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
        M = info.hessian
        if np.linalg.det(M) > 0:
            self.ab, self.ab_cov = np.array([alpha, beta]), np.linalg.inv(M)
        Z = alpha * d + beta
        Z[~info.active] = np.nan  # outliers of the 2.1 m loop are not moved
        sigma_z = np.hypot(alpha * cues.sem[ok], cfg.relative_sigma * np.abs(Z))
        return Z, sigma_z

    def _smooth(self, track_id: str, s: float, var_s: float, h: float, has_height: bool):
        """Kalman update of the track's metric height; returns (scale, scale variance) or (None, 0)."""
        cfg = self.config
        if not has_height:
            return None, 0.0
        track = self.tracks.get(track_id) if track_id else None
        if track is not None:  # predict: a person's height is constant up to a small random walk
            track.var += cfg.height_process_sigma_m**2 * (self.frame - track.last_seen)
        if np.isnan(s):
            if track is None:
                return None, 0.0
            track.last_seen = self.frame
            return track.height_m / h, track.var / h**2
        H, var_H = s * h, var_s * h**2
        if track is None:
            if track_id:
                self.tracks[track_id] = _Track(H, var_H, self.frame)
            return s, var_s
        gain = track.var / (track.var + var_H)
        track.height_m += gain * (H - track.height_m)
        track.var *= 1.0 - gain
        track.last_seen = self.frame
        return track.height_m / h, track.var / h**2

    def _prune(self) -> None:
        ttl = self.config.track_ttl
        for tid in [t for t, tr in self.tracks.items() if self.frame - tr.last_seen > ttl]:
            del self.tracks[tid]
