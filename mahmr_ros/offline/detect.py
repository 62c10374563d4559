"""Multi-person detection for the single-person BlazePose: proposals, per-person crops,
mask-and-repeat.

These are the earlier person sources of the offline estimator (``offline.detector: hog+blazepose``,
``blazepose``, ``hog``); the default is NanoDet + MoveNet (:mod:`mahmr_ros.offline.people_source`),
which finds small and crowded people these miss (labelled vtest frames + astronaut: recall 0.125
with ``hog+blazepose``, 0.982 with the default; ``benchmarks/results/people2d.json``).

BlazePose (legacy MediaPipe graph) returns at most one person per call. Two ways to find several,
combined:

* ``hog``: OpenCV's HOG + linear SVM pedestrian detector (Dalal-Triggs, ``cv2.HOGDescriptor``)
  proposes upright people; BlazePose runs on each proposal's crop. Fast on a downscaled frame (~20
  ms at 480x360 here), but it misses sitting, very small or heavily occluded people.
* ``blazepose``: BlazePose on the whole frame finds the most prominent person; we paint that
  person's box over with the frame's median colour and ask again, until nobody is found or
  ``max_people`` is reached (``N + 1`` calls of ~40 ms for N people).

For video, :meth:`PersonFinder.follow` runs BlazePose only on the previous frame's boxes, one
tracking-mode instance per person (it skips its own detector while the person stays: ~30 % cheaper
per call); the estimator falls back to a full search every ``rescan_every`` frames or as soon as
someone is lost.

Per-person BlazePose calls (the HOG crops, the followed boxes) run in a thread pool, one BlazePose
graph per slot: MediaPipe releases the GIL and runs each graph on one core, so on the 2-core CPU
three people's crops take ~49 ms instead of ~83 ms one after another. Results are merged in the
serial order, so the people found do not depend on the threads.

``hog+blazepose`` (the default of these) runs the HOG crops first and then the mask-and-repeat scan
on what is left, so a person HOG missed is still found; duplicates (landmark boxes overlapping by
more than ``dedup_iou``) are dropped. Measured on the bundled 3-person sample (640x480, 2-core
CPU): ``hog`` 3/3, ``blazepose`` 3/3, ``hog+blazepose`` 3/3.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mahmr_ros.geometry import box_iou
from mahmr_ros.offline.pose import BlazePose, PoseLandmarks

DETECTORS = ("hog+blazepose", "blazepose", "hog")


def match_boxes(boxes: np.ndarray, previous: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """Greedy one-to-one matching of (N, 4) xyxy boxes to (M, 4) previous ones by IoU, best pairs
    first.

    Returns:
        (N,) int index into ``previous`` for each box, -1 where no unmatched previous box overlaps
        it by more than ``min_iou``.
    """
    match = np.full(len(boxes), -1)
    pairs = [(box_iou(a, b), i, j) for i, a in enumerate(boxes) for j, b in enumerate(previous)]
    taken = set()
    for iou, i, j in sorted(pairs, reverse=True):
        if iou <= min_iou:
            break
        if match[i] < 0 and j not in taken:
            match[i] = j
            taken.add(j)
    return match


class HogPeopleDetector:
    """OpenCV's default HOG people detector, run on a downscaled frame.

    Args:
        scale: image scale the detector runs at (0.75 keeps people >= ~170 px tall in the
            original).
        pyramid_step: scale step between pyramid levels (larger = faster, fewer levels).
        min_weight: SVM margin below which a detection is dropped.
    """

    def __init__(self, scale: float = 0.75, pyramid_step: float = 1.1, min_weight: float = 0.3):
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise ImportError(
                f"[offline] this OpenCV ({cv2.__version__}) has no HOGDescriptor; use opencv 4.x"
            )
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.scale = scale
        self.pyramid_step = pyramid_step
        self.min_weight = min_weight

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 -> boxes (N, 4) xyxy px in the original image, weights (N,), best
        first."""
        import cv2

        small = image_bgr
        if self.scale != 1.0:
            small = cv2.resize(
                image_bgr, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA
            )
        if min(small.shape[:2]) < 128:  # smaller than one detection window: nothing to find
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self._hog.detectMultiScale(
            small, winStride=(8, 8), padding=(8, 8), scale=self.pyramid_step
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        rects = np.asarray(rects, np.float64) / self.scale
        weights = np.asarray(weights, np.float64).reshape(-1)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        keep = weights >= self.min_weight
        order = np.argsort(-weights[keep])
        return boxes[keep][order], weights[keep][order]


class PersonFinder:
    """Find up to ``max_people`` people and their BlazePose landmarks in a frame.

    Args:
        detector: one of :data:`DETECTORS`.
        max_people: stop after this many people.
        min_pose_score: drop people whose BlazePose score (mean limb visibility) is below this.
        dedup_iou: landmark boxes overlapping more than this are one person.
        min_detection_confidence: BlazePose's own detector threshold.
        hog_scale: image scale of the HOG detector.
    """

    def __init__(
        self,
        detector: str = "hog+blazepose",
        max_people: int = 6,
        min_pose_score: float = 0.5,
        dedup_iou: float = 0.4,
        min_detection_confidence: float = 0.5,
        hog_scale: float = 0.75,
    ):
        if detector not in DETECTORS:
            raise ValueError(
                f"[offline] unknown detector '{detector}' (known: {', '.join(DETECTORS)})"
            )
        if max_people < 1:
            raise ValueError(f"[offline] max_people must be >= 1, got {max_people}")
        self.detector = detector
        self.max_people = max_people
        self.min_pose_score = min_pose_score
        self.dedup_iou = dedup_iou
        self.pose = BlazePose(min_detection_confidence=min_detection_confidence)
        self._min_detection_confidence = min_detection_confidence
        self._followers: list[
            BlazePose
        ] = []  # one tracking-mode BlazePose per followed person (slot)
        # one static-image BlazePose per HOG crop slot (a MediaPipe graph runs one image at a
        # time); slot 0 is the scan's own instance
        self._crop_poses: list[BlazePose] = [self.pose]
        self.hog = HogPeopleDetector(scale=hog_scale) if "hog" in detector else None
        # threads only wait on MediaPipe (GIL released); one per person so no crop queues behind
        # another
        self._pool = ThreadPoolExecutor(max_workers=max_people, thread_name_prefix="blazepose")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for pose in self._crop_poses + self._followers:
            pose.close()

    def _process_all(self, poses: list[BlazePose], image_bgr: np.ndarray, boxes) -> list:
        """``poses[i].process(image_bgr, boxes[i])`` for every box, concurrently: (N,) results in
        box order (``PoseLandmarks`` or None)."""
        if len(boxes) == 1:  # nothing to overlap: skip the pool's hand-off
            return [poses[0].process(image_bgr, boxes[0])]
        return list(self._pool.map(lambda pb: pb[0].process(image_bgr, pb[1]), zip(poses, boxes)))

    def _is_new(self, person: PoseLandmarks, found: list[PoseLandmarks]) -> bool:
        return all(box_iou(person.bbox_xyxy, other.bbox_xyxy) <= self.dedup_iou for other in found)

    def follow(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[PoseLandmarks] | None:
        """Video shortcut: BlazePose on last frame's boxes only (no HOG, no scan).

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            boxes: (N, 4) xyxy px, the people of the previous frame.

        Returns:
            The people, or None when someone was lost (the caller should run :meth:`find`).
        """
        found: list[PoseLandmarks] = []
        boxes = list(boxes)[: self.max_people]
        while len(self._followers) < len(boxes):
            self._followers.append(BlazePose(self._min_detection_confidence, tracking=True))
        for person in self._process_all(self._followers, image_bgr, boxes):
            if (
                person is None
                or person.score < self.min_pose_score
                or not self._is_new(person, found)
            ):
                return None
            found.append(person)
        return found

    def find(self, image_bgr: np.ndarray) -> list[PoseLandmarks]:
        """(H, W, 3) uint8 BGR -> people (landmarks in original-image pixels), in the order
        found."""
        found: list[PoseLandmarks] = []
        if self.hog is not None:
            boxes, _ = self.hog(image_bgr)
            # best boxes first, max_people crops at a time, until max_people are found (as one at a
            # time)
            for start in range(0, len(boxes), self.max_people):
                if len(found) >= self.max_people:
                    break
                chunk = boxes[start : start + self.max_people]
                while len(self._crop_poses) < len(chunk):
                    self._crop_poses.append(
                        BlazePose(min_detection_confidence=self._min_detection_confidence)
                    )
                for person in self._process_all(self._crop_poses, image_bgr, chunk):
                    if len(found) >= self.max_people:
                        break
                    if (
                        person is not None
                        and person.score >= self.min_pose_score
                        and self._is_new(person, found)
                    ):
                        found.append(person)
        if "blazepose" in self.detector:
            found = self._mask_and_repeat(image_bgr, found)
        return found

    def _mask_and_repeat(
        self, image_bgr: np.ndarray, found: list[PoseLandmarks]
    ) -> list[PoseLandmarks]:
        """Hide everyone found so far and ask BlazePose for the next most prominent person."""
        fill = np.median(image_bgr.reshape(-1, 3), axis=0).astype(np.uint8)
        work = image_bgr.copy()
        H, W = image_bgr.shape[:2]

        def hide(box: np.ndarray) -> None:
            x0, y0, x1, y1 = np.round(box).astype(int)
            work[max(0, y0) : min(H, y1 + 1), max(0, x0) : min(W, x1 + 1)] = fill

        for person in found:
            hide(person.bbox_xyxy)
        # each miss costs a call; cap the attempts so a frame of non-people cannot loop long
        for _ in range(self.max_people - len(found) + 1):
            if len(found) >= self.max_people:
                break
            person = self.pose.process(work)
            if person is None:
                break
            hide(person.bbox_xyxy)
            if person.score >= self.min_pose_score and self._is_new(person, found):
                found.append(person)
        return found
