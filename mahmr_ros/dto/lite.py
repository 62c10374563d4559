"""DTO-Lite: the per-frame variant of DTO (spec dto §10), with per-track temporal smoothing.

Per frame, for P people (any body mesh; faces are not needed), one concept per module:

1. Cues (``mahmr_ros.dto.lite_cues``) from a fixed vertex subset (every k-th vertex, about
   ``num_samples``): visibility against a low-resolution splatted z-buffer
   (``mahmr_ros.dto.splat``), eroded masks, valid depth, IQR trim; removal of people with too few
   visible or valid samples.
2. Solve (``mahmr_ros.dto.lite_solve``, spec §10.1): metric depth -> the closed-form soft scale
   with (alpha, beta) = (1, 0); relative cue -> one group with free (alpha, beta) under a temporal
   Gaussian prior; no depth -> the height prior only (s = mu / h). A floor (``floor=``, e.g. the
   offline estimator's crowd estimate) is one more metric cue (``mahmr_ros.dto.floor``): the scale
   that stands a person's soles on it, fused with the height prior by precision; depth, when a
   person has a depth reading, wins (the floor only fills in for people the depth cue removed), and
   people whose height was measured (a known-height prior, which for the offline estimator already
   came from the floor) do not use it twice.
3. Temporal (``mahmr_ros.dto.kalman``): a 1-D Kalman filter per ``track_id`` on the person's metric
   height; the output scale is H_filtered / h_i. A tracked person without a usable cue this frame
   (occluded, out of the depth image) keeps the track's metric height ("track" status). The
   relative map (alpha, beta) has its own constant-position Kalman filter.
4. Apply (``mahmr_ros.dto.apply``): scale along the ray (+ SMPL shape update when a shape model is
   given).

This module only orchestrates them and keeps the state (``DTOLite``).
"""

from __future__ import annotations

import time

import numpy as np

from mahmr_ros.dto.apply import apply_scale
from mahmr_ros.dto.floor import floor_scale_cue, fuse_scale
from mahmr_ros.dto.kalman import AffineFilter, HeightFilter
from mahmr_ros.dto.lite_config import LiteConfig
from mahmr_ros.dto.lite_cues import LiteCues, lite_cues, sample_stride
from mahmr_ros.dto.lite_solve import solve_scales
from mahmr_ros.dto.refine import DEPTH_KINDS, prior_moments, resolve_priors
from mahmr_ros.dto.shape import ShapeModel
from mahmr_ros.dto.splat import splat_zbuffer
from mahmr_ros.types import FloorEstimate, HumanEstimate

# Re-exported: these lived here before the split (``from mahmr_ros.dto.lite import lite_cues``
# keeps working).
__all__ = ["DTOLite", "LiteConfig", "LiteCues", "lite_cues", "splat_zbuffer"]


class DTOLite:
    """Stateful per-frame DTO (spec §10): call once per frame with the frame's people (stable
    ``track_id``).

    Args:
        config: LiteConfig.
        shape_model: optional SMPL(-A) shape space (beta update for SMPL bodies).
        device: "cpu" (numpy splat) or a torch device for the package rasterizer.

    Attributes:
        tracks: ``track_id`` -> ``HeightTrack`` (filtered metric height per person).
        ab, ab_cov: filtered (alpha, beta) of the relative cue and its (2, 2) covariance (None
            until solved).
        last_timings_ms: wall times of the last call's ``cues``, ``solve`` and ``apply`` steps.
    """

    def __init__(
        self, config: LiteConfig | None = None, shape_model: ShapeModel | None = None, device="cpu"
    ):
        self.config = config or LiteConfig()
        self.shape_model = shape_model
        self.device = device
        self.frame = 0
        self._heights = HeightFilter()
        self._affine = AffineFilter()
        self._subset: dict[int, int] = {}
        self.last_timings_ms: dict[str, float] = {}

    @property
    def tracks(self) -> dict:
        return self._heights.tracks

    @property
    def ab(self) -> np.ndarray | None:
        return self._affine.mean

    @property
    def ab_cov(self) -> np.ndarray | None:
        return self._affine.cov

    def reset(self) -> None:
        """Forget all tracks and the (alpha, beta) filter (e.g. after the camera moved)."""
        self.tracks.clear()
        self._affine.reset()

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
        """Refine one frame (arguments as ``mahmr_ros.dto.refine``); returns new estimates in input
        order.

        Args (beyond ``refine``'s):
            floor: the floor people stand on (camera height and pitch with sigmas), a cue for
                people without a depth reading or measured height; None = no floor cue.
            image_hw: (H, W) of the image; needed with ``floor`` when ``depth`` is None (the floor
                cues only people whose feet project inside the image).
        """
        t0 = time.perf_counter()
        cfg = self.config
        self.frame += 1
        K = _check_frame(K, depth_kind)
        humans = list(humans)
        self._heights.prune(self.frame, cfg.track_ttl)
        if not humans:
            return []
        verts = self._sample_vertices(humans)
        person_priors = resolve_priors(humans, priors)
        mu, sigma, classes, has_height = prior_moments(humans, person_priors, cfg.use_gender)
        h = np.array([hm.height_m if ok else 1.0 for hm, ok in zip(humans, has_height)])
        floor_s, floor_sigma = self._floor_cue(
            humans, floor, K, depth, image_hw, person_priors, has_height
        )
        t1 = time.perf_counter()
        if depth is None:
            s, var_s = fuse_scale(mu / h, (sigma / h) ** 2, floor_s, floor_sigma)
            status = ["floor" if np.isfinite(f) else "prior" for f in floor_s]
        else:
            cues = lite_cues(verts, K, depth, depth_kind, masks, cfg, self.device)
            t1 = time.perf_counter()
            for i in np.flatnonzero(~has_height):
                cues.removed[i] = "no_height"
            s, var_s, status = solve_scales(cues, h, mu, sigma, depth_kind, cfg, self._affine)
            # no depth reading (removed, out of range, outlier) but feet on the floor: the floor
            # cue
            fill = np.isnan(s) & np.isfinite(floor_s)
            if fill.any():
                s[fill], var_s[fill] = fuse_scale(
                    mu[fill] / h[fill],
                    (sigma[fill] / h[fill]) ** 2,
                    floor_s[fill],
                    floor_sigma[fill],
                )
                for i in np.flatnonzero(fill):
                    status[i] = "floor"
        t2 = time.perf_counter()
        out = []
        for i, hm in enumerate(humans):
            si, vi = None, 0.0
            if has_height[i]:
                si, vi = self._heights.update(
                    hm.track_id, self.frame, s[i], var_s[i], h[i], cfg.height_process_sigma_m
                )
            if si is None:
                out.append(
                    hm.replace(extras={**hm.extras, "dto": {"mode": "lite", "status": status[i]}})
                )
                continue
            if np.isnan(s[i]):
                status[i] = "track"
            report = {"mode": "lite", "status": status[i], "raw_scale": float(s[i])}
            out.append(apply_scale(hm, si, shape_model=self.shape_model, age_class=classes[i],
                                   depth_sigma_m=float(np.linalg.norm(hm.pelvis)) * np.sqrt(vi),
                                   height_z=abs(si * h[i] - mu[i]) / sigma[i],
                                   shape_steps=cfg.shape_steps, report=report))  # fmt: skip
        t3 = time.perf_counter()
        self.last_timings_ms = {
            "cues": (t1 - t0) * 1e3,
            "solve": (t2 - t1) * 1e3,
            "apply": (t3 - t2) * 1e3,
        }
        return out

    @staticmethod
    def _floor_cue(humans, floor, K, depth, image_hw, person_priors, has_height):
        """(P,) floor scale cue and its sigma (NaN = no cue: no floor, feet unseen, or height
        measured)."""
        nan = np.full(len(humans), np.nan)
        if floor is None:
            return nan, nan.copy()
        if image_hw is None and depth is None:
            raise ValueError(
                "[dto.lite] a floor cue needs image_hw (H, W) when no depth map is given"
            )
        hw = image_hw if image_hw is not None else np.asarray(depth).shape[-2:]
        floor_s, floor_sigma = floor_scale_cue(humans, floor, K, hw)
        measured = np.array([p.height_m is not None for p in person_priors], bool)
        return np.where(measured | ~has_height, np.nan, floor_s), floor_sigma

    def _sample_vertices(self, humans: list[HumanEstimate]) -> np.ndarray:
        """(P, S, 3) float32 vertex subset of every person (one body model per frame)."""
        Vs = {len(h.vertices) for h in humans}
        if len(Vs) > 1:
            raise ValueError(
                f"[dto.lite] all people must share one body model (vertex counts {sorted(Vs)})"
            )
        V = Vs.pop()
        if V not in self._subset:
            self._subset[V] = sample_stride(V, self.config.num_samples)
        stride = self._subset[V]
        verts = np.stack([h.vertices[::stride] for h in humans]).astype(np.float32, copy=False)
        if not np.all(np.isfinite(verts)):
            raise ValueError("[dto.lite] non-finite vertices in the estimates")
        return verts


def _check_frame(K, depth_kind: str) -> np.ndarray:
    if depth_kind not in DEPTH_KINDS:
        raise ValueError(f"[dto.lite] depth_kind must be one of {DEPTH_KINDS}, got '{depth_kind}'")
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"[dto.lite] K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}"
        )
    return K
