"""Every person in a frame with COCO-17 2D keypoints: NanoDet boxes + MoveNet keypoints (or
MultiPose).

Two ways, chosen by ``keypoints`` (measured on real footage by ``benchmarks/bench_people2d.py``,
numbers in ``benchmarks/results/people2d.json``):

* ``"lightning"`` (default) / ``"thunder"`` (top-down): NanoDet finds person boxes in a squashed
  and a letterboxed 416x416 view of the frame (merged by NMS); MoveNet single-pose (Lightning 192
  px / Thunder 256 px) puts 17 keypoints on a square crop around each box. A box whose mean
  keypoint score is below ``min_keypoint_score`` is not a person: on our labelled frames Thunder
  gave the people 0.31-0.72 and the cones, bollards, rocks and signs NanoDet also calls "person"
  mostly 0.04-0.2 (partial boxes on real people score higher and are removed as duplicates).
  Keypoints that stray from their box (a neighbour's head in the crop) are retried on a tight crop,
  then dropped. On 56 labelled people both variants reach recall 0.98 at precision 1.0; Lightning
  costs ~2.5x less per frame and its keypoints lie a median 1.2 % of the person's height from
  Thunder's (90 %: 2.7 %), hence the default; Thunder is the choice when time allows.
* ``"multipose"`` (bottom-up): MoveNet MultiPose, one pass for up to 6 people, no detector;
  scale-sensitive (at 512 px it misses large people, at 256 px small ones): recall 0.89 at 512 px.

Video: :meth:`PeopleDetector.track` skips the detector and runs a single-pose model
(``track_keypoints``, default Lightning: ~4x cheaper than Thunder and as good at following people,
see the benchmark) on the boxes of the previous frame; each person's new box is derived from their
keypoints, and a person whose keypoints fade (mean score below the threshold) or jump to a
neighbour comes back as None, so the caller knows whom it lost and runs
:meth:`PeopleDetector.detect` again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mahmr_ros.geometry import box_iou
from mahmr_ros.offline.movenet import SINGLE_VARIANTS, MoveNetMultiPose, MoveNetSingle
from mahmr_ros.offline.nanodet import PASSES, NanoDet

KEYPOINT_MODES = ("thunder", "lightning", "multipose")
#: Keypoints confident enough to shape a box (:func:`box_from_keypoints`).
BOX_KEYPOINT_SCORE = 0.3
#: How far a person's box reaches beyond their keypoints, in units of the keypoint box height:
#: (left, top, right, bottom). The head top is above the eyes and the soles below the ankles;
#: measured as the median over the labelled vtest people (``benchmarks/bench_people2d.py
#: --calibrate``).
BOX_MARGINS = (0.07, 0.10, 0.07, 0.09)
#: In :meth:`PeopleDetector.track`, a person's new keypoint box must overlap the box it was tracked
#: from by at least this IoU (at 10 fps a walker's box moves by a few pixels; a jump means the
#: crop's keypoints went to a neighbour).
TRACK_MIN_IOU = 0.3
#: A detector box and the box of the keypoints found in its crop must overlap at least this much,
#: else the keypoints belong to someone else (lowest IoU of a correct pair on the labelled vtest
#: frames: 0.46).
KEYPOINTS_IN_BOX_MIN_IOU = 0.4
#: In :meth:`PeopleDetector.detect` with ``known`` people, a detector box overlapping a known
#: person's box by at least this IoU is that person (no keypoint run of its own).
KNOWN_MIN_IOU = 0.5
#: How far (in box heights) a confident face keypoint may lie outside its detector box.
FACE_OUTSIDE_BOX_MAX = 0.02
#: Two people whose common confident keypoints lie closer than this (median, in box heights) are
#: one person.
SAME_KEYPOINT_DISTANCE = 0.1
#: With the nose and both shoulders seen, the head top is this many nose-to-shoulder heights above
#: the highest face keypoint (median 0.85 over the labelled vtest people, 0.62 on the astronaut);
#: it also holds for waist-up people, whose keypoint box height says nothing about their head.
HEAD_TOP_FACTOR = 0.8


@dataclass
class Person2D:
    """One person in the image.

    Attributes:
        bbox_xyxy_px: (4,) float64 box in original image pixels (x0, y0, x1, y1).
        score: confidence in [0, 1]: the detector's person score (NanoDet, or MultiPose's person
            score); in :meth:`PeopleDetector.track`, the mean keypoint score (no detector ran).
        keypoints_px: (17, 2) float64 (x, y) original image pixels, COCO-17 order
            (``movenet.COCO17_NAMES``).
        keypoint_scores: (17,) float64 in [0, 1].
    """

    bbox_xyxy_px: np.ndarray
    score: float
    keypoints_px: np.ndarray
    keypoint_scores: np.ndarray

    @property
    def mean_keypoint_score(self) -> float:
        return float(np.mean(self.keypoint_scores))


def box_from_keypoints(
    keypoints_px: np.ndarray, scores: np.ndarray, min_score: float = BOX_KEYPOINT_SCORE
) -> np.ndarray | None:
    """A person box around the confident keypoints, widened by :data:`BOX_MARGINS`.

    Args:
        keypoints_px: (17, 2) x, y px.
        scores: (17,) keypoint scores.
        min_score: keypoints below this are ignored.

    Returns:
        (4,) xyxy px, or None with fewer than two confident keypoints.
    """
    confident = keypoints_px[scores >= min_score]
    if len(confident) < 2:
        return None
    x0, y0 = confident.min(0)
    x1, y1 = confident.max(0)
    h = max(y1 - y0, (x1 - x0) / 2, 1.0)  # a lying or cropped person: fall back on the width
    left, top, right, bottom = BOX_MARGINS
    box = np.array([x0 - left * h, y0 - top * h, x1 + right * h, y1 + bottom * h])
    seen = scores >= min_score
    nose_to_shoulders = (keypoints_px[5, 1] + keypoints_px[6, 1]) / 2 - keypoints_px[0, 1]
    if seen[0] and seen[5] and seen[6] and nose_to_shoulders > 0:
        face_top = keypoints_px[:5, 1][seen[:5]].min()
        box[1] = min(box[1], face_top - HEAD_TOP_FACTOR * nose_to_shoulders)
    return box


class PeopleDetector:
    """Find people and their COCO-17 keypoints.

    Args:
        keypoints: one of :data:`KEYPOINT_MODES` (see the module docstring).
        max_people: at most this many people per frame (best scores first).
        detector_passes: NanoDet's views of the frame (``nanodet.PASSES``); top-down modes only.
        box_score: NanoDet's minimum person score.
        min_keypoint_score: a person needs at least this mean keypoint score (rejects non-people).
        track_keypoints: single-pose variant used by :meth:`track` (``"thunder"`` or
            ``"lightning"``).
        multipose_size: MultiPose's input size (longer side, multiple of 32).
        dedup_iou: two people whose keypoint boxes overlap more than this are one person.
        crop_scale: single-pose crop side over the box's longer side (``movenet.MoveNetSingle``).
        threads: onnxruntime intra-op threads of each session.
        workers: MoveNet crops and NanoDet passes run concurrently on this many threads.
    """

    def __init__(
        self,
        keypoints: str = "lightning",
        max_people: int = 20,
        detector_passes: tuple[str, ...] = PASSES,
        box_score: float = 0.3,
        min_keypoint_score: float = 0.25,
        track_keypoints: str = "lightning",
        multipose_size: int = 512,
        dedup_iou: float = 0.6,
        crop_scale: float = 1.25,
        threads: int = 1,
        workers: int = 1,
    ):
        if keypoints not in KEYPOINT_MODES:
            raise ValueError(
                f"[offline] keypoints must be one of {KEYPOINT_MODES}, got '{keypoints}'"
            )
        if max_people < 1:
            raise ValueError(f"[offline] max_people must be >= 1, got {max_people}")
        if track_keypoints not in SINGLE_VARIANTS:
            raise ValueError(f"[offline] track_keypoints must be one of {list(SINGLE_VARIANTS)}")
        self.keypoints = keypoints
        self.max_people = max_people
        self.min_keypoint_score = min_keypoint_score
        self.dedup_iou = dedup_iou
        self.nanodet = self.multipose = None
        if keypoints == "multipose":
            self.multipose = MoveNetMultiPose(multipose_size, threads=threads)
        else:
            self.nanodet = NanoDet(
                detector_passes, score_threshold=box_score, threads=threads, workers=workers
            )
        self._single: dict[str, MoveNetSingle] = {}
        for variant in {track_keypoints} | ({keypoints} & set(SINGLE_VARIANTS)):
            self._single[variant] = MoveNetSingle(
                variant, crop_scale=crop_scale, threads=threads, workers=workers
            )
        self.track_keypoints = track_keypoints

    def close(self) -> None:
        """Release the onnxruntime sessions; the detector cannot be used afterwards."""
        self.nanodet = self.multipose = None
        self._single.clear()

    def _check_open(self) -> None:
        if not self._single:
            raise RuntimeError("[offline] this PeopleDetector was closed; make a new one")

    def _keep(self, people: list[Person2D]) -> list[Person2D]:
        """Drop non-people and duplicates (best score first), cap at ``max_people``."""
        kept: list[Person2D] = []
        for person in sorted(people, key=lambda p: -p.score):
            if person.mean_keypoint_score < self.min_keypoint_score:
                continue
            if any(self._same_person(person, other) for other in kept):
                continue
            kept.append(person)
            if len(kept) == self.max_people:
                break
        return kept

    def _same_person(self, a: Person2D, b: Person2D) -> bool:
        """Two detections of one person: their keypoint boxes overlap by more than ``dedup_iou``,
        or their common confident keypoints coincide (a crop of a person's edge finds that person's
        face again)."""
        box_a = box_from_keypoints(a.keypoints_px, a.keypoint_scores)
        box_b = box_from_keypoints(b.keypoints_px, b.keypoint_scores)
        if box_a is None or box_b is None:
            return False
        if box_iou(box_a, box_b) > self.dedup_iou:
            return True
        common = (a.keypoint_scores >= BOX_KEYPOINT_SCORE) & (
            b.keypoint_scores >= BOX_KEYPOINT_SCORE
        )
        if common.sum() < 3:
            return False
        distance = np.linalg.norm(a.keypoints_px[common] - b.keypoints_px[common], axis=1)
        scale = max(box_b[3] - box_b[1], box_a[3] - box_a[1])
        return float(np.median(distance)) < SAME_KEYPOINT_DISTANCE * scale

    def detect(self, image_bgr: np.ndarray, known: list[Person2D] | None = None) -> list[Person2D]:
        """Full search of one frame (a still image, or a video frame that needs re-detection).

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            known: people already found in this frame (video mode: those :meth:`track` kept when
                someone else was lost). A detector box overlapping one of them by IoU >=
                :data:`KNOWN_MIN_IOU` gets no keypoint run of its own (the person has keypoints);
                the known people compete with the new ones for the ``max_people`` places (with the
                matching box's score).

        Returns:
            The people, highest score first, at most ``max_people``.
        """
        self._check_open()
        _check_image(image_bgr)
        if self.multipose is not None:
            boxes, scores, kps, kp_scores = self.multipose(image_bgr)
            people = [
                Person2D(b, float(s), k, ks) for b, s, k, ks in zip(boxes, scores, kps, kp_scores)
            ]
            return self._keep(people)
        boxes, scores = self.nanodet.detect(image_bgr)
        # keypoints for more candidates than max_people: some are rejected by their keypoints
        boxes, scores = boxes[: 2 * self.max_people], scores[: 2 * self.max_people]
        known = [replace(p) for p in known or []]
        if known and len(boxes):
            overlap = np.array(
                [[box_iou(p.bbox_xyxy_px, b) for b in boxes] for p in known]
            )  # (N, B)
            for p, row in zip(known, overlap):
                if row.max() >= KNOWN_MIN_IOU:
                    p.score = float(scores[row.argmax()])
            new = overlap.max(0) < KNOWN_MIN_IOU
            boxes, scores = boxes[new], scores[new]
        model = self._single[self.keypoints]
        kps, kp_scores = model(image_bgr, boxes)
        # a crop holding two people may give the other one's keypoints: such a candidate's keypoint
        # box leaves its detector box; retry it on a tight crop, and drop it if its keypoints still
        # stray
        strays = [
            i
            for i in range(len(boxes))
            if not self._keypoints_fit_box(kps[i], kp_scores[i], boxes[i])
        ]
        if strays:
            kps[strays], kp_scores[strays] = model(image_bgr, boxes[strays], crop_scale=1.0)
        people = [
            Person2D(b, float(s), k, ks)
            for b, s, k, ks in zip(boxes, scores, kps, kp_scores)
            if self._keypoints_fit_box(k, ks, b)
        ]
        return self._keep(known + people)

    @staticmethod
    def _keypoints_fit_box(keypoints_px: np.ndarray, scores: np.ndarray, box: np.ndarray) -> bool:
        """The keypoints are the boxed person's: their box overlaps the detector box and the
        confident face keypoints lie inside it (a neighbour's head just above or beside the box
        gives a mixed skeleton)."""
        kp_box = box_from_keypoints(keypoints_px, scores)
        if kp_box is None or box_iou(kp_box, box) < KEYPOINTS_IN_BOX_MIN_IOU:
            return False
        face = keypoints_px[:5][scores[:5] >= BOX_KEYPOINT_SCORE]
        margin = FACE_OUTSIDE_BOX_MAX * (box[3] - box[1])
        return bool(np.all((face >= box[:2] - margin) & (face <= box[2:] + margin)))

    def track(self, image_bgr: np.ndarray, boxes_xyxy_px: np.ndarray) -> list[Person2D | None]:
        """Video mode: keypoints in the given boxes (last frame's people), no detector run.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            boxes_xyxy_px: (P, 4) boxes, original image pixels (at most ``max_people`` are used).

        Returns:
            One entry per box, in box order: the :class:`Person2D` (box re-derived from the
            keypoints, see :func:`box_from_keypoints`; ``score`` = mean keypoint score), or None
            where the person was lost: keypoints faded below ``min_keypoint_score``, the keypoint
            box left the given box (IoU below :data:`TRACK_MIN_IOU`: the crop's keypoints jumped to
            someone else), or an earlier box already holds the same person. A None tells the caller
            to run :meth:`detect` again.
        """
        self._check_open()
        _check_image(image_bgr)
        boxes = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)[: self.max_people]
        kps, kp_scores = self._single[self.track_keypoints](image_bgr, boxes)
        H, W = image_bgr.shape[:2]
        people: list[Person2D | None] = []
        for previous, k, ks in zip(boxes, kps, kp_scores):
            box = box_from_keypoints(k, ks)
            if box is None or ks.mean() < self.min_keypoint_score:
                people.append(None)
                continue
            box = np.clip(box, 0, [W, H, W, H])
            if box_iou(box, previous) < TRACK_MIN_IOU:
                people.append(None)
                continue
            person = Person2D(box, float(ks.mean()), k, ks)
            if any(other is not None and self._same_person(person, other) for other in people):
                people.append(
                    None
                )  # two boxes converged on one person: the earlier box keeps them
                continue
            people.append(person)
        return people


def _check_image(image_bgr: np.ndarray) -> None:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = getattr(image_bgr, "shape", None)
        raise ValueError(f"[offline] expected an (H, W, 3) uint8 BGR image, got shape {shape}")
    if image_bgr.dtype != np.uint8:
        raise ValueError(f"[offline] expected a uint8 BGR image, got dtype {image_bgr.dtype}")
