"""Where the offline estimator's people come from: one frame -> P x :class:`PersonKeypoints`.

Two sources behind one interface (``find`` a frame from scratch, ``follow`` the last frame's
people):

* ``nanodet+movenet`` (default, :class:`DetectorSource`): NanoDet person boxes + MoveNet COCO-17
  keypoints (:class:`~mahmr_ros.offline.people2d.PeopleDetector`): every person in the frame, small
  and cut-off people included. BlazePose can add its metric 3D landmarks and foot points to a
  person (``blazepose_3d``), but it never chooses whom it describes: it runs on that person's crop,
  and its 2D landmarks must lie on the person's MoveNet keypoints (:func:`blazepose_agrees`), else
  the person is fitted on the 2D keypoints alone. In video mode ``follow`` runs MoveNet in the last
  frame's boxes (no detector) and reports a lost person, so the estimator searches again.
* ``hog+blazepose``, ``blazepose``, ``hog`` (:class:`BlazePoseSource`): the earlier BlazePose
  finders of :mod:`mahmr_ros.offline.detect` (one person per BlazePose call; HOG keeps people
  taller than ~170 px).

Why BlazePose is off by default (``benchmarks/bench_lift.py``, numbers in
``benchmarks/results/lift.json``): see :data:`BLAZEPOSE_3D_MODES` and the README's offline section.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mahmr_ros.offline.keypoints import PersonKeypoints, from_blazepose, with_world
from mahmr_ros.offline.pose import BlazePose

#: Person sources (``OfflineEstimator(detector=...)``); the first is the default.
SOURCES = ("nanodet+movenet", "hog+blazepose", "blazepose", "hog")
#: When :class:`DetectorSource` asks BlazePose for 3D landmarks: ``never``; ``search`` (on
#: full-search frames only; followed frames reuse nothing and fit 2D-only... see the estimator);
#: ``always``.
BLAZEPOSE_3D_MODES = ("never", "search", "always")
#: BlazePose's 2D landmarks agree with a person's keypoints when their median distance over the
#: keypoints both see is at most this fraction of the person's box height (the same person:
#: ~0.02-0.05; a neighbour or a left/right swap: the width of a shoulder or more, >= 0.1).
AGREE_MAX_DISTANCE = 0.08
#: ... over at least this many keypoints seen by both.
AGREE_MIN_KEYPOINTS = 6
#: Keypoint scores and BlazePose visibilities counted as "seen" in the agreement check.
AGREE_MIN_SCORE = 0.3


def blazepose_agrees(person: PersonKeypoints, blazepose: PersonKeypoints) -> bool:
    """Did BlazePose (run on the person's crop) see the same person as the detector's keypoints?

    Args:
        person: the detector's person (COCO-17 keypoints first).
        blazepose: :func:`~mahmr_ros.offline.keypoints.from_blazepose` of BlazePose's result on
            that crop.

    Returns:
        True when at least :data:`AGREE_MIN_KEYPOINTS` COCO keypoints are seen by both and their
        median distance is at most :data:`AGREE_MAX_DISTANCE` of the person's box height.
    """
    a, b = person.keypoints_px[:17], blazepose.keypoints_px[:17]
    both = (person.keypoint_scores[:17] >= AGREE_MIN_SCORE) & (
        blazepose.keypoint_scores[:17] >= AGREE_MIN_SCORE
    )
    both &= np.isfinite(a).all(1) & np.isfinite(b).all(1)
    if both.sum() < AGREE_MIN_KEYPOINTS:
        return False
    height = max(person.bbox_xyxy[3] - person.bbox_xyxy[1], 1.0)
    return (
        float(np.median(np.linalg.norm(a[both] - b[both], axis=1))) <= AGREE_MAX_DISTANCE * height
    )


class DetectorSource:
    """NanoDet + MoveNet people, optionally completed by BlazePose's 3D landmarks (see the module
    docstring).

    Args:
        max_people: most people per frame.
        keypoints: MoveNet variant of the full search (``lightning`` or ``thunder``).
        track_keypoints: MoveNet variant of ``follow``.
        blazepose_3d: one of :data:`BLAZEPOSE_3D_MODES`.
        min_detection_confidence: BlazePose's detector threshold on the crops.
        box_score: NanoDet's minimum person score (the keypoints then reject non-people).
        threads: onnxruntime intra-op threads per session.
        workers: MoveNet crops and NanoDet passes run concurrently on this many threads.
    """

    def __init__(
        self,
        max_people: int = 20,
        keypoints: str = "lightning",
        track_keypoints: str = "lightning",
        blazepose_3d: str = "never",
        min_detection_confidence: float = 0.5,
        box_score: float = 0.3,
        threads: int = 1,
        workers: int = 2,
    ):
        from mahmr_ros.offline.people2d import PeopleDetector

        if blazepose_3d not in BLAZEPOSE_3D_MODES:
            raise ValueError(
                f"[offline] blazepose_3d must be one of {', '.join(BLAZEPOSE_3D_MODES)}, got "
                f"'{blazepose_3d}'"
            )
        self.detector = PeopleDetector(
            keypoints=keypoints,
            track_keypoints=track_keypoints,
            max_people=max_people,
            box_score=box_score,
            threads=threads,
            workers=workers,
        )
        self.max_people = max_people
        self.blazepose_3d = blazepose_3d
        self._min_detection_confidence = min_detection_confidence
        self._poses: list[BlazePose] = []  # one static-image BlazePose graph per concurrent crop
        self._pool: ThreadPoolExecutor | None = None
        #: (people given BlazePose crops, people whose BlazePose agreed) of the last call, for
        #: reports.
        self.last_blazepose = (0, 0)

    def close(self) -> None:
        self.detector.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for pose in self._poses:
            pose.close()
        self._poses.clear()

    def find(
        self, image_bgr: np.ndarray, K: np.ndarray, known: list | None = None
    ) -> list[PersonKeypoints]:
        """Full search: every person of the frame (detector + keypoints, + BlazePose unless
        ``never``).

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            K: (3, 3) intrinsics, pixels.
            known: people :meth:`follow` kept in this frame (its non-None entries): their detector
                boxes get no keypoint run of their own (``PeopleDetector.detect(known=)``), which
                on a crowded frame is most of a full search's cost.
        """
        from mahmr_ros.offline.people2d import Person2D

        known = [
            Person2D(p.bbox_xyxy, p.score, p.keypoints_px[:17], p.keypoint_scores[:17])
            for p in known or []
        ]
        found = self.detector.detect(image_bgr, known=known)
        people = [_as_keypoints(p) for p in found]
        if self.blazepose_3d != "never":
            people = self._lift(image_bgr, K, people)
        return people

    def follow(
        self, image_bgr: np.ndarray, K: np.ndarray, boxes: np.ndarray
    ) -> list[PersonKeypoints | None]:
        """Video mode: the last frame's people in their boxes (no detector); None for a person
        lost."""
        people = [
            None if p is None else _as_keypoints(p) for p in self.detector.track(image_bgr, boxes)
        ]
        if self.blazepose_3d == "always" and all(p is not None for p in people):
            people = self._lift(image_bgr, K, people)
        return people

    def _lift(
        self, image_bgr: np.ndarray, K: np.ndarray, people: list[PersonKeypoints]
    ) -> list[PersonKeypoints]:
        """BlazePose on each person's crop; its 3D landmarks and feet where it agrees with the
        keypoints."""
        if not people:
            self.last_blazepose = (0, 0)
            return people
        while len(self._poses) < len(people):
            self._poses.append(BlazePose(min_detection_confidence=self._min_detection_confidence))
        boxes = [p.bbox_xyxy for p in people]
        if len(people) == 1:
            results = [self._poses[0].process(image_bgr, boxes[0])]
        else:
            if self._pool is None:  # MediaPipe releases the GIL: crops overlap on the two cores
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_people, thread_name_prefix="blazepose"
                )
            results = list(
                self._pool.map(lambda pb: pb[0].process(image_bgr, pb[1]), zip(self._poses, boxes))
            )
        out, agreed = [], 0
        for person, landmarks in zip(people, results):
            if landmarks is not None:
                lifted = from_blazepose(landmarks, K)
                if blazepose_agrees(person, lifted):
                    person = with_world(person, lifted)
                    agreed += 1
            out.append(person)
        self.last_blazepose = (len(people), agreed)
        return out


def _as_keypoints(person) -> PersonKeypoints:
    """:class:`~mahmr_ros.offline.people2d.Person2D` -> the fit's :class:`PersonKeypoints`
    (COCO-17)."""
    return PersonKeypoints(
        person.bbox_xyxy_px,
        person.keypoints_px,
        person.keypoint_scores,
        person.score,
        source="movenet",
    )


class BlazePoseSource:
    """The BlazePose finders of :mod:`mahmr_ros.offline.detect` behind the source interface.

    Args:
        detector: ``hog+blazepose``, ``blazepose`` or ``hog``.
        **kwargs: :class:`~mahmr_ros.offline.detect.PersonFinder` options.
    """

    def __init__(self, detector: str, **kwargs):
        from mahmr_ros.offline.detect import PersonFinder

        self.finder = PersonFinder(detector=detector, **kwargs)

    def close(self) -> None:
        self.finder.close()

    def find(
        self, image_bgr: np.ndarray, K: np.ndarray, known: list | None = None
    ) -> list[PersonKeypoints]:
        """Full search (``known`` is not used: BlazePose's follow keeps no partial result)."""
        return [from_blazepose(landmarks, K) for landmarks in self.finder.find(image_bgr)]

    def follow(
        self, image_bgr: np.ndarray, K: np.ndarray, boxes: np.ndarray
    ) -> list[PersonKeypoints | None]:
        """The last frame's people in their boxes; all None when one was lost
        (``PersonFinder.follow``)."""
        found = self.finder.follow(image_bgr, boxes)
        if found is None:
            return [None] * len(boxes)
        return [from_blazepose(landmarks, K) for landmarks in found]
