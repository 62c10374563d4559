"""Stable body ids across frames: Hungarian assignment on 2D box overlap + 3D pelvis distance.

Each track keeps the last pelvis position (m, camera frame), a constant-velocity estimate and the last box.
Association cost for track t and detection d (lower is better):

    cost = (1 - IoU(box_t, box_d)) + |p_t + v_t*dt - p_d| / max_distance_m

with pairs gated out when the boxes do not overlap enough AND the pelvis is too far. Box overlap carries
most of the weight because monocular depth is the least reliable coordinate (DTO fixes it later); the 3D
term separates people whose boxes overlap at different depths. Tracks unseen for longer than the
re-identification window are dropped. Ids are short, REP-155 style (a letter first), e.g. ``"bk3x9"``.

The pipeline calls ``assign`` before DTO (so DTO can smooth per track) and ``update_motion`` after it (so
velocities use the refined positions); ``update`` does both for callers without DTO.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mahmr_ros.types import HumanEstimate

_ID_CHARS = string.ascii_lowercase + string.digits
_INFEASIBLE = 1e6


@dataclass
class Track:
    """State of one tracked body (camera frame, metres, seconds)."""

    track_id: str
    pelvis_m: np.ndarray
    bbox_xyxy: np.ndarray
    last_seen_s: float
    velocity_mps: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    hits: int = 1

    def predicted_pelvis(self, t_s: float) -> np.ndarray:
        return self.pelvis_m + self.velocity_mps * max(t_s - self.last_seen_s, 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes.

    Args:
        a: (M, 4) xyxy px.
        b: (N, 4) xyxy px.

    Returns:
        (M, N) IoU in [0, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class Tracker:
    """Multi-person tracker giving stable REP-155-style ids.

    Args:
        reid_window_s: a track unseen for longer than this is forgotten (its id is never reused).
        max_distance_m: pelvis distance (after constant-velocity prediction) that costs as much as no box
            overlap; pairs farther than this AND with IoU below ``min_iou`` are never matched.
        min_iou: box overlap below which a pair needs the 3D distance to be matched.
        velocity_smoothing: EMA weight of the newest velocity sample in [0, 1] (1 = no smoothing).
        frame_period_s: time step assumed between frames that carry no stamp.
        id_length: characters per id (first one a letter).
        seed: seed for id generation (None = random; fixed in tests for reproducible ids).
    """

    def __init__(
        self,
        reid_window_s: float = 1.0,
        max_distance_m: float = 1.0,
        min_iou: float = 0.1,
        velocity_smoothing: float = 0.5,
        frame_period_s: float = 1 / 30,
        id_length: int = 5,
        seed: int | None = None,
    ):
        if reid_window_s < 0 or max_distance_m <= 0 or not 0 <= min_iou <= 1:
            raise ValueError(
                f"[tracking] bad parameters: reid_window_s={reid_window_s} (>= 0), "
                f"max_distance_m={max_distance_m} (> 0), min_iou={min_iou} (in [0, 1])"
            )
        self.reid_window_s = float(reid_window_s)
        self.max_distance_m = float(max_distance_m)
        self.min_iou = float(min_iou)
        self.velocity_smoothing = float(velocity_smoothing)
        self.frame_period_s = float(frame_period_s)
        self.id_length = max(int(id_length), 2)
        self._rng = np.random.default_rng(seed)
        self._used_ids: set[str] = set()
        self.tracks: dict[str, Track] = {}
        self._t_s = 0.0

    def _new_id(self) -> str:
        while True:
            first = self._rng.choice(list(string.ascii_lowercase))
            rest = "".join(self._rng.choice(list(_ID_CHARS), self.id_length - 1))
            track_id = first + rest
            if track_id not in self._used_ids:
                self._used_ids.add(track_id)
                return track_id

    def _clock(self, t_s: float | None) -> float:
        self._t_s = self._t_s + self.frame_period_s if t_s is None else float(t_s)
        return self._t_s

    def assign(self, humans: list[HumanEstimate], t_s: float | None = None) -> list[HumanEstimate]:
        """Give every person a track id (matched to an existing track or new). Returns new estimates."""
        t_s = self._clock(t_s)
        self._forget(t_s)
        tracks = list(self.tracks.values())
        ids: list[str | None] = [None] * len(humans)
        if tracks and humans:
            cost = self._cost(tracks, humans, t_s)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] < _INFEASIBLE:
                    ids[c] = tracks[r].track_id
        out = []
        for human, track_id in zip(humans, ids, strict=True):
            if track_id is None:
                track_id = self._new_id()
                self.tracks[track_id] = Track(
                    track_id, human.pelvis.copy(), human.bbox_xyxy.copy(), t_s, hits=0
                )
            out.append(human.replace(track_id=track_id))
        return out

    def update_motion(self, humans: list[HumanEstimate]) -> list[HumanEstimate]:
        """Update the tracks of already-assigned people with their (refined) pelvis; fill ``velocity``."""
        t_s = self._t_s
        out = []
        for human in humans:
            track = self.tracks.get(human.track_id)
            if track is None:
                out.append(human)
                continue
            dt = t_s - track.last_seen_s
            if track.hits > 0 and dt > 0:
                sample = (human.pelvis - track.pelvis_m) / dt
                w = self.velocity_smoothing
                track.velocity_mps = (w * sample + (1 - w) * track.velocity_mps).astype(np.float32)
            track.pelvis_m = human.pelvis.copy()
            track.bbox_xyxy = human.bbox_xyxy.copy()
            track.last_seen_s = t_s
            track.hits += 1
            out.append(human.replace(velocity=track.velocity_mps.copy()))
        return out

    def update(self, humans: list[HumanEstimate], t_s: float | None = None) -> list[HumanEstimate]:
        """``assign`` then ``update_motion`` (no refinement in between)."""
        return self.update_motion(self.assign(humans, t_s))

    def reset(self) -> None:
        """Forget every track (ids already given out are still never reused)."""
        self.tracks.clear()

    def _forget(self, t_s: float) -> None:
        for track_id in [k for k, tr in self.tracks.items() if t_s - tr.last_seen_s > self.reid_window_s]:
            del self.tracks[track_id]

    def _cost(self, tracks: list[Track], humans: list[HumanEstimate], t_s: float) -> np.ndarray:
        iou = box_iou(np.stack([t.bbox_xyxy for t in tracks]), np.stack([h.bbox_xyxy for h in humans]))
        pred = np.stack([t.predicted_pelvis(t_s) for t in tracks])  # (T, 3)
        dist = np.linalg.norm(pred[:, None, :] - np.stack([h.pelvis for h in humans])[None], axis=2)
        cost = (1.0 - iou) + dist / self.max_distance_m
        gated = (iou < self.min_iou) & (dist > self.max_distance_m)
        return np.where(gated, _INFEASIBLE, cost)
