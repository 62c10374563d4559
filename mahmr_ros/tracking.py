"""Stable body ids across frames: Hungarian assignment on 2D box overlap, 3D pelvis distance and
appearance.

Each track keeps the last box with its velocity, two pelvis states (m, camera frame), each with a
constant-velocity estimate: the estimator's raw pelvis, for association, and the refined (DTO)
pelvis, for the published velocity; and, when the caller passes the image, the person's colour
descriptor (:mod:`mahmr_ros.appearance`). Association cost for track t and detection d (lower is
better):

    cost = (1 - IoU(box_t + v_t*dt, box_d))
           + min(|r_t + u_t*dt - r_d| / max_distance_m, distance_cost_cap)
           + appearance_weight * D(a_t, a_d)

with v the velocity of the box centre (px/s; the box keeps its size), r the raw pelvis, u its
velocity and D the appearance distance in [0, 1] (0 without an image). Pairs are gated out when the
boxes do not overlap enough AND the pelvis is too far, or when they look too different (D >
``appearance_gate``). Box overlap and appearance carry most of the weight: monocular depth is the
least reliable coordinate (DTO fixes it later), so the 3D term is capped; it separates people whose
boxes overlap at different depths, the box velocity keeps two people walking past each other on
their own side, and the appearance tells them apart while their boxes overlap. Measured on the
labelled vtest clip (``benchmarks/bench_real.py``, README):

* a person's first fits jump in depth by metres (20 % at 20 m) while the box and colours agree:
  uncapped, the 3D term (4 m -> 4) handed a person who had just stepped out from behind another
  that other's id;
* a track's look is a running mean plus a gallery of its last ``appearance_gallery`` looks
  (distance = the nearest): people's colours drift across the scene (light), 0.6 from their first
  look after 2 s while 0.05-0.15 frame to frame; a look is learnt only when the box overlaps
  nobody, is not cut by the image border (a cut box's colours are a different crop: a track started
  at the border never learnt again) and is near the track's look;
* a person hidden for up to ``reid_window_s`` (a man behind a sign post: 1.3 s) keeps the id when
  they reappear looking the same (``reid_appearance``) where they could have walked to.

Tracks unseen for longer than the re-identification window are dropped. Ids are short, REP-155
style (a letter first), e.g. ``"bk3x9"``.

The pipeline calls ``assign`` before DTO (so DTO can smooth per track) and ``update_motion`` after
it (so velocities use the refined positions); ``update`` does both for callers without DTO.
Association compares raw with raw because the next frame's detections are raw when ``assign`` runs:
comparing them with refined track positions mixed two depth estimates that differ by exactly what
DTO corrects (tens of centimetres to metres along the ray), which swapped the ids of overlapping
people at different depths. Refined with refined is not possible (DTO needs the ids first) and
would mix regimes whenever DTO falls back for a frame.

Ids come from an affine permutation of the id space (index = a k + b mod N, a coprime with N = 26 *
36^(L-1), seeded), so the k-th new track gets a distinct id for the first N tracks (43.7 million
for L = 5) with no set of used ids to keep. After N tracks the ids wrap around (oldest first),
skipping the ids of live tracks.
"""

from __future__ import annotations

import math
import string
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mahmr_ros import geometry
from mahmr_ros.appearance import appearance_descriptor, appearance_distance
from mahmr_ros.types import HumanEstimate

_ID_CHARS = string.ascii_lowercase + string.digits
_INFEASIBLE = 1e6
#: A person whose box overlaps another's by more than this IoU does not update their track's
#: appearance.
OVERLAP_NO_LEARN = 0.1
#: A track learns a detection's look only when it is this close to the track's own (same person one
#: frame apart: 90 % under 0.14 on vtest).
LEARN_MAX_DISTANCE = 0.2
#: How far a re-identified person may have walked while unseen, in their box heights per second
#: (walking speed ~1.4 m/s is ~0.8 body heights per second).
REID_BODY_HEIGHTS_PER_S = 1.0
#: Appearance distance charged to a pair whose looks cannot be compared (as far apart as the
#: farthest look a track still learns from).
UNKNOWN_LOOK_DISTANCE = LEARN_MAX_DISTANCE
#: Pixels from the image border within which a box counts as cut by it (its look is not learnt).
BORDER_PX = 3.0


@dataclass
class Track:
    """State of one tracked body (camera frame, metres, seconds).

    Attributes:
        track_id: the body id.
        pelvis_m: (3,) last refined (published) pelvis; ``velocity_mps`` is its velocity.
        bbox_xyxy: (4,) px, last box.
        last_seen_s: time of the last update.
        velocity_mps: (3,) m/s, smoothed velocity of the refined pelvis (published).
        hits: updates so far.
        raw_pelvis_m: (3,) last raw (estimator, pre-DTO) pelvis, the association state; None =
            ``pelvis_m``.
        raw_velocity_mps: (3,) m/s, smoothed velocity of the raw pelvis (association prediction).
        box_velocity_pxps: (4,) px/s, smoothed velocity of the box corners (association
            prediction).
        appearance: colour descriptor (:mod:`mahmr_ros.appearance`), running mean of the learnt
            looks, or None (no look learnt yet).
        gallery: the last learnt looks (at most the tracker's ``appearance_gallery``), newest last.
    """

    track_id: str
    pelvis_m: np.ndarray
    bbox_xyxy: np.ndarray
    last_seen_s: float
    velocity_mps: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    hits: int = 1
    raw_pelvis_m: np.ndarray | None = None
    raw_velocity_mps: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    box_velocity_pxps: np.ndarray = field(default_factory=lambda: np.zeros(4))
    appearance: np.ndarray | None = None
    gallery: list[np.ndarray] = field(default_factory=list)

    def look_distance(self, look: np.ndarray) -> float:
        """Appearance distance of a descriptor to this track: to its mean or its nearest gallery
        look, in [0, 1] (NaN when the track has no look yet)."""
        if self.appearance is None:
            return math.nan
        return min(
            [appearance_distance(self.appearance, look)]
            + [appearance_distance(g, look) for g in self.gallery]
        )

    def __post_init__(self) -> None:
        if self.raw_pelvis_m is None:
            self.raw_pelvis_m = np.array(self.pelvis_m, copy=True)

    def predicted_pelvis(self, t_s: float) -> np.ndarray:
        """(3,) raw pelvis predicted at ``t_s`` (constant velocity), comparable with a raw
        detection."""
        return self.raw_pelvis_m + self.raw_velocity_mps * max(t_s - self.last_seen_s, 0.0)

    def predicted_box(self, t_s: float) -> np.ndarray:
        """(4,) box predicted at ``t_s``: the last box moved by the constant velocity of its centre
        (it keeps its size: extrapolating each corner let a box whose size jittered shrink to
        nothing), pixels."""
        v = self.box_velocity_pxps
        centre_pxps = 0.5 * (v[:2] + v[2:])
        return self.bbox_xyxy + np.tile(centre_pxps, 2) * max(t_s - self.last_seen_s, 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Deprecated: (M, 4), (N, 4) xyxy -> (M, N) IoU.

    Use ``mahmr_ros.geometry.box_iou(a[:, None], b[None])``.
    """
    warnings.warn(
        "mahmr_ros.tracking.box_iou is deprecated; use "
        "mahmr_ros.geometry.box_iou(a[:, None], b[None])",
        DeprecationWarning,
        stacklevel=2,
    )
    return _pairwise_iou(a, b)


def _pairwise_iou(a, b) -> np.ndarray:
    """(M, N) IoU of every pair of the (M, 4) and (N, 4) xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return geometry.box_iou(a[:, None], b[None])


class Tracker:
    """Multi-person tracker giving stable REP-155-style ids.

    Args:
        reid_window_s: a track unseen for longer than this is forgotten (its id is not reused
            before the id space is spent, see the module docstring).
        max_distance_m: pelvis distance (after constant-velocity prediction) that costs as much as
            no box overlap; pairs farther than this AND with IoU below ``min_iou`` are never
            matched.
        min_iou: box overlap below which a pair needs the 3D distance to be matched.
        velocity_smoothing: EMA weight of the newest velocity sample in [0, 1] (1 = no smoothing).
        frame_period_s: time step assumed between frames that carry no stamp.
        id_length: characters per id (first one a letter).
        seed: seed for id generation (None = random; fixed in tests for reproducible ids).
        appearance_weight: weight of the appearance distance in the cost (used when ``assign`` gets
            the image; 0 = off).
        appearance_gate: a pair whose appearance distance exceeds this is never matched (1 = no
            gate).
        appearance_smoothing: EMA weight of the newest descriptor in a track's appearance.
        reid_appearance: a track and a detection that look this alike (appearance distance below
            it) may be matched without box overlap or a near pelvis, if the box centre is within
            reach of the track's (:data:`REID_BODY_HEIGHTS_PER_S`): a person back after an
            occlusion keeps the id. 0 = off.
        box_velocity: predict each track's box with its velocity (False: the last box as it was).
        distance_cost_cap: most the 3D pelvis term may add to a pair's cost (monocular depth jumps
            by metres between a person's first frames; inf = no cap).
        appearance_gallery: looks kept per track besides the running mean (0 = the mean only).
    """

    def __init__(
        self,
        reid_window_s: float = 2.0,
        max_distance_m: float = 1.0,
        min_iou: float = 0.1,
        velocity_smoothing: float = 0.5,
        frame_period_s: float = 1 / 30,
        id_length: int = 5,
        seed: int | None = None,
        appearance_weight: float = 2.0,
        appearance_gate: float = 0.6,
        appearance_smoothing: float = 0.3,
        reid_appearance: float = 0.3,
        box_velocity: bool = True,
        distance_cost_cap: float = 0.5,
        appearance_gallery: int = 10,
    ):
        if reid_window_s < 0 or max_distance_m <= 0 or not 0 <= min_iou <= 1:
            raise ValueError(
                f"[tracking] bad parameters: reid_window_s={reid_window_s} (>= 0), "
                f"max_distance_m={max_distance_m} (> 0), min_iou={min_iou} (in [0, 1])"
            )
        if (
            appearance_weight < 0
            or not 0 < appearance_gate <= 1
            or not 0 < appearance_smoothing <= 1
        ):
            raise ValueError(
                f"[tracking] bad parameters: appearance_weight={appearance_weight} (>= 0), "
                f"appearance_gate={appearance_gate} (in (0, 1]), "
                f"appearance_smoothing={appearance_smoothing} (in (0, 1])"
            )
        if distance_cost_cap <= 0 or appearance_gallery < 0:
            raise ValueError(
                f"[tracking] bad parameters: distance_cost_cap={distance_cost_cap} (> 0), "
                f"appearance_gallery={appearance_gallery} (>= 0)"
            )
        self.distance_cost_cap = float(distance_cost_cap)
        self.appearance_gallery = int(appearance_gallery)
        self.appearance_weight = float(appearance_weight)
        self.appearance_gate = float(appearance_gate)
        self.appearance_smoothing = float(appearance_smoothing)
        self.reid_appearance = float(reid_appearance)
        self.box_velocity = bool(box_velocity)
        self.reid_window_s = float(reid_window_s)
        self.max_distance_m = float(max_distance_m)
        self.min_iou = float(min_iou)
        self.velocity_smoothing = float(velocity_smoothing)
        self.frame_period_s = float(frame_period_s)
        self.id_length = max(int(id_length), 2)
        rng = np.random.default_rng(seed)
        self._id_space = len(string.ascii_lowercase) * len(_ID_CHARS) ** (self.id_length - 1)
        self._id_step = _coprime_step(rng, self._id_space)
        self._id_offset = int(rng.integers(self._id_space))
        self._ids_given = 0
        self.tracks: dict[str, Track] = {}
        # This frame's raw pelvis per id, from assign to update_motion.
        self._raw_pelvis: dict[str, np.ndarray] = {}
        # This frame's descriptor per id (None: not given or overlapped by someone), assign ->
        # update_motion.
        self._appearance: dict[str, np.ndarray | None] = {}
        self._t_s = 0.0

    def _new_id(self) -> str:
        if len(self.tracks) >= self._id_space:
            raise RuntimeError(
                f"[tracking] {len(self.tracks)} live tracks use every id of length "
                f"{self.id_length} (raise tracking.id_length)"
            )
        while True:  # terminates: a free id exists (checked above)
            index = (self._id_step * self._ids_given + self._id_offset) % self._id_space
            self._ids_given += 1
            index, first = divmod(index, len(string.ascii_lowercase))
            chars = [string.ascii_lowercase[first]]
            for _ in range(self.id_length - 1):
                index, digit = divmod(index, len(_ID_CHARS))
                chars.append(_ID_CHARS[digit])
            track_id = "".join(chars)
            if track_id not in self.tracks:
                return track_id

    def _clock(self, t_s: float | None) -> float:
        self._t_s = self._t_s + self.frame_period_s if t_s is None else float(t_s)
        return self._t_s

    def assign(
        self,
        humans: list[HumanEstimate],
        t_s: float | None = None,
        image: np.ndarray | None = None,
    ) -> list[HumanEstimate]:
        """Give every person a track id (matched to an existing track or new). Returns new
        estimates.

        Args:
            humans: this frame's people.
            t_s: the frame's time, seconds (None: ``frame_period_s`` after the last frame).
            image: (H, W, 3) uint8 BGR frame the people were found in: adds the appearance cue
                (optional).
        """
        t_s = self._clock(t_s)
        self._forget(t_s)
        self._raw_pelvis.clear()
        self._appearance.clear()
        looks = self._descriptors(humans, image)
        tracks = list(self.tracks.values())
        ids: list[str | None] = [None] * len(humans)
        if tracks and humans:
            cost = self._cost(tracks, humans, t_s, looks)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] < _INFEASIBLE:
                    ids[c] = tracks[r].track_id
        out = []
        boxes = np.array([h.bbox_xyxy for h in humans], np.float64).reshape(-1, 4)
        overlap = _pairwise_iou(boxes, boxes) - np.eye(len(humans))
        cut = _on_border(boxes, None if image is None else image.shape[:2])
        for i, (human, track_id) in enumerate(zip(humans, ids, strict=True)):
            # colours of a box that overlaps someone else's are partly theirs, and a box cut by the
            # image border holds another crop of the person: neither is learnt
            learn = overlap[i].max(initial=0.0) < OVERLAP_NO_LEARN and not cut[i]
            look = looks[i] if learn else None
            if track_id is None:
                track_id = self._new_id()
                self.tracks[track_id] = Track(
                    track_id,
                    human.pelvis.copy(),
                    human.bbox_xyxy.copy(),
                    t_s,
                    hits=0,
                    appearance=look,
                )
            self._raw_pelvis[track_id] = human.pelvis.copy()
            self._appearance[track_id] = look
            out.append(human.replace(track_id=track_id))
        return out

    def _descriptors(self, humans: list[HumanEstimate], image: np.ndarray | None) -> list:
        """Per person, the colour descriptor in ``image`` (None: no image or appearance off)."""
        if image is None or self.appearance_weight == 0:
            return [None] * len(humans)
        return [appearance_descriptor(image, h.bbox_xyxy) for h in humans]

    def update_motion(self, humans: list[HumanEstimate]) -> list[HumanEstimate]:
        """Update the tracks of already-assigned people with their (refined) pelvis; fill
        ``velocity``.

        The raw pelvis ``assign`` saw this frame updates the association state; the given (refined)
        pelvis updates the published velocity. A person ``assign`` did not see this frame counts as
        raw = refined.
        """
        t_s = self._t_s
        out = []
        for human in humans:
            track = self.tracks.get(human.track_id)
            if track is None:
                out.append(human)
                continue
            raw = self._raw_pelvis.pop(human.track_id, human.pelvis)
            look = self._appearance.pop(human.track_id, None)
            dt = t_s - track.last_seen_s
            if track.hits > 0 and dt > 0:
                track.velocity_mps = self._smoothed(
                    track.velocity_mps, human.pelvis - track.pelvis_m, dt
                )
                track.raw_velocity_mps = self._smoothed(
                    track.raw_velocity_mps, raw - track.raw_pelvis_m, dt
                )
                if self.box_velocity:
                    step = np.asarray(human.bbox_xyxy, np.float64) - track.bbox_xyxy
                    track.box_velocity_pxps = self._smoothed(
                        track.box_velocity_pxps, step, dt
                    ).astype(np.float64)
            if look is not None and (
                track.appearance is None or track.look_distance(look) < LEARN_MAX_DISTANCE
                # a look far from the track's (a box holding two people, a doubtful match) is not
                # learnt
            ):
                a = self.appearance_smoothing
                track.appearance = (
                    look if track.appearance is None else (1 - a) * track.appearance + a * look
                )
                if self.appearance_gallery:
                    track.gallery = [*track.gallery, look][-self.appearance_gallery :]
            track.pelvis_m = human.pelvis.copy()
            track.raw_pelvis_m = np.array(raw, copy=True)
            track.bbox_xyxy = human.bbox_xyxy.copy()
            track.last_seen_s = t_s
            track.hits += 1
            out.append(human.replace(velocity=track.velocity_mps.copy()))
        return out

    def _smoothed(self, velocity: np.ndarray, step_m: np.ndarray, dt: float) -> np.ndarray:
        w = self.velocity_smoothing
        return (w * step_m / dt + (1 - w) * velocity).astype(np.float32)

    def update(self, humans: list[HumanEstimate], t_s: float | None = None) -> list[HumanEstimate]:
        """``assign`` then ``update_motion`` (no refinement in between)."""
        return self.update_motion(self.assign(humans, t_s))

    def reset(self) -> None:
        """Forget every track (the id sequence goes on, so ids already given out are not
        reused)."""
        self.tracks.clear()
        self._raw_pelvis.clear()
        self._appearance.clear()

    def _forget(self, t_s: float) -> None:
        for track_id in [
            k for k, tr in self.tracks.items() if t_s - tr.last_seen_s > self.reid_window_s
        ]:
            del self.tracks[track_id]

    def _cost(
        self, tracks: list[Track], humans: list[HumanEstimate], t_s: float, looks: list
    ) -> np.ndarray:
        boxes = np.stack(
            [t.predicted_box(t_s) if self.box_velocity else t.bbox_xyxy for t in tracks]
        )
        det = np.stack([h.bbox_xyxy for h in humans])
        iou = _pairwise_iou(boxes, det)
        # (T, 3) raw, like the detections
        pred = np.stack([t.predicted_pelvis(t_s) for t in tracks])
        dist = np.linalg.norm(
            pred[:, None, :] - np.stack([h.pelvis for h in humans])[None], axis=2
        )
        # a pair that cannot be compared (a track that has learnt no look yet, a detection without
        # a look) costs a borderline same-person distance, not 0: at 0 a young track born from a
        # stray box beat the person's own track, whose look was known and close (vtest, a man who
        # met another)
        look = np.full_like(
            iou, UNKNOWN_LOOK_DISTANCE if any(a is not None for a in looks) else 0.0
        )
        for i, track in enumerate(tracks):
            for j, a in enumerate(looks):
                if track.appearance is not None and a is not None:
                    look[i, j] = track.look_distance(a)
        depth_term = np.minimum(dist / self.max_distance_m, self.distance_cost_cap)
        cost = (1.0 - iou) + depth_term + self.appearance_weight * look
        far = (iou < self.min_iou) & (dist > self.max_distance_m)
        if self.reid_appearance > 0:
            # re-identification after an occlusion: the same look, where the person could have
            # walked to (box centre within a body height per second of the prediction, plus half a
            # body height)
            gap = np.array([max(t_s - t.last_seen_s, 0.0) for t in tracks])
            height = boxes[:, 3] - boxes[:, 1]
            centre = lambda b: 0.5 * (b[..., :2] + b[..., 2:])  # noqa: E731
            shift = np.linalg.norm(centre(boxes)[:, None] - centre(det)[None], axis=2)
            reach = (height * (REID_BODY_HEIGHTS_PER_S * gap + 0.5))[:, None]
            known = (
                np.array([t.appearance is not None for t in tracks])[:, None]
                & np.array([a is not None for a in looks])[None]
            )
            far &= ~(known & (look < self.reid_appearance) & (shift < reach))
        # a detection whose box overlaps another's shows partly the other person: its look adds to
        # the cost but vetoes nothing (it did: two people meeting, the one behind got a new id)
        mixed = (_pairwise_iou(det, det) - np.eye(len(humans))).max(
            1, initial=0.0
        ) > OVERLAP_NO_LEARN
        gated = far | ((look > self.appearance_gate) & ~mixed[None])
        return np.where(gated, _INFEASIBLE, cost)


def _on_border(boxes: np.ndarray, image_hw: tuple[int, int] | None) -> np.ndarray:
    """(N,) bool: the (N, 4) boxes reach within :data:`BORDER_PX` of the image border (all False
    without an image size)."""
    if image_hw is None:
        return np.zeros(len(boxes), bool)
    H, W = image_hw
    return (
        (boxes[:, 0] <= BORDER_PX)
        | (boxes[:, 1] <= BORDER_PX)
        | (boxes[:, 2] >= W - 1 - BORDER_PX)
        | (boxes[:, 3] >= H - 1 - BORDER_PX)
    )


def _coprime_step(rng: np.random.Generator, n: int) -> int:
    """A random step in [1, n) coprime with n, so k -> step k mod n visits every index once per n
    steps."""
    while True:
        step = int(rng.integers(1, n))
        if math.gcd(step, n) == 1:
            return step
