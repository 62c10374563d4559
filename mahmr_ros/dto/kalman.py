"""DTO-Lite's temporal filters (spec dto §10): two small Kalman filters that carry state across
frames.

* ``HeightFilter``: a 1-D Kalman filter per ``track_id`` on the person's metric height (constant
  for a person up to a small random walk), fed with s_i h_i and its variance. A tracked person
  without a usable cue this frame keeps the track's height.
* ``AffineFilter``: a constant-position Kalman filter on the relative cue's affine map (alpha,
  beta) (static camera). Its prediction is the Gaussian prior of the next frame's solve, so a frame
  with a single person is solvable and the map is stable; the solve's normal matrix is the
  posterior information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class HeightTrack:
    """Filtered metric height of one track: mean (m), variance (m^2), frame index last seen."""

    height_m: float
    var: float
    last_seen: int


class HeightFilter:
    """Per-track 1-D Kalman filter on the metric height; ``tracks`` maps ``track_id`` ->
    ``HeightTrack``."""

    def __init__(self) -> None:
        self.tracks: dict[str, HeightTrack] = {}

    def prune(self, frame: int, ttl: int) -> None:
        """Forget tracks unseen for more than ``ttl`` frames."""
        for tid in [t for t, tr in self.tracks.items() if frame - tr.last_seen > ttl]:
            del self.tracks[tid]

    def update(
        self,
        track_id: str,
        frame: int,
        scale: float,
        var_scale: float,
        height_m: float,
        process_sigma_m: float,
    ) -> tuple[float | None, float]:
        """Fuse this frame's scale of one person into its track.

        Args:
            track_id: the person's id ("" = untracked: the frame's scale is returned, nothing is
                kept).
            frame: index of this frame.
            scale: this frame's DTO scale s (NaN = no usable cue this frame).
            var_scale: variance of ``scale``.
            height_m: the estimate's height h (metric height = s h).
            process_sigma_m: per-frame random walk of the metric height, metres.

        Returns:
            (filtered scale, its variance), or (None, 0) when there is neither a cue nor a track.
        """
        track = self.tracks.get(track_id) if track_id else None
        if track is not None:  # predict: a person's height is constant up to a small random walk
            track.var += process_sigma_m**2 * (frame - track.last_seen)
        if np.isnan(scale):
            if track is None:
                return None, 0.0
            track.last_seen = frame
            return track.height_m / height_m, track.var / height_m**2
        H, var_H = scale * height_m, var_scale * height_m**2
        if track is None:
            if track_id:
                self.tracks[track_id] = HeightTrack(H, var_H, frame)
            return scale, var_scale
        gain = track.var / (track.var + var_H)
        track.height_m += gain * (H - track.height_m)
        track.var *= 1.0 - gain
        track.last_seen = frame
        return track.height_m / height_m, track.var / height_m**2


class AffineFilter:
    """Constant-position Kalman filter on (alpha, beta); ``mean`` (2,) and ``cov`` (2, 2), None
    until set."""

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.cov: np.ndarray | None = None

    def reset(self) -> None:
        self.mean = self.cov = None

    def prior(self, process_sigma) -> tuple[np.ndarray, np.ndarray] | None:
        """Predicted (mean, precision) for this frame (random walk ``process_sigma`` of (alpha,
        beta)), or None before the first update."""
        if self.mean is None:
            return None
        cov = self.cov + np.diag(np.square(process_sigma))
        return self.mean, np.linalg.inv(cov)

    def update(self, alpha: float, beta: float, information: np.ndarray) -> None:
        """Posterior from a solve that included the prior: (alpha, beta) and its (2, 2) normal
        matrix."""
        if np.linalg.det(information) > 0:
            self.mean, self.cov = np.array([alpha, beta]), np.linalg.inv(information)
