"""The Anny fit's input: one person's 2D keypoints (COCO-17, or COCO-17 + feet), optional metric 3D
landmarks.

Any 2D pose source feeds the fit through :class:`PersonKeypoints`:

* a multi-person detector + COCO-17 keypoints (MoveNet, ViTPose, ...): ``keypoints_px`` (17, 2) and
  ``keypoint_scores`` (17,), no 3D (``world_m=None``): the fit then relies on the 2D keypoints and
  the body prior (size, standing pose);
* BlazePose (:func:`from_blazepose`): its 33 landmarks mapped to the 23 Anny keypoints (COCO-17 +
  big toes and heels), with its hip-centred metric world landmarks rotated into camera axes;
* both (:func:`with_world`): the detector's 17 keypoints, BlazePose's feet and 3D landmarks, when
  BlazePose on that person's crop agreed with the keypoints (the caller checks; see the function).

Keypoint order is Anny's (:data:`~mahmr_ros.offline.anny_body.KEYPOINT_NAMES`): its first 17 are
COCO-17 exactly, the last six are big toe, small toe and heel per foot. A keypoint is *unknown*
when its score is below the fit's threshold or when it lies outside the image or on its border
(:func:`fit_targets`): pose networks guess where a cut-off limb would be and often give it a high
score (BlazePose: outside the image; crop-based networks such as MoveNet: clamped to the crop's
edge); a guess must neither pose nor place the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mahmr_ros.geometry import rotation_between, unproject
from mahmr_ros.offline.anny_body import KEYPOINT_NAMES
from mahmr_ros.offline.pose import BLAZEPOSE_FOR_ANNY, PoseLandmarks

#: Keypoints per person in the fit (Anny's COCO-17 + 6 foot points).
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
#: COCO-17 keypoints (the first 17 of Anny's).
NUM_COCO = 17
#: Per-keypoint weight in the fit and placement (KEYPOINT_NAMES order). The five face points sit
#: close together and BlazePose's face landmarks are not Anny's COCO ones exactly, so together they
#: count like ~1.5 body joints; otherwise a close-up face outvotes the shoulders and hips.
KEYPOINT_WEIGHTS = np.array([0.3] * 5 + [1.0] * 18)


@dataclass
class PersonKeypoints:
    """One person as the fit sees it.

    Attributes:
        bbox_xyxy: (4,) float64 px, the person's box in the original image.
        keypoints_px: (K, 2) float64 px in the original image (x right, y down), K = 17 (COCO-17)
            or 23 (COCO-17 + Anny's six foot points); NaN = not given.
        keypoint_scores: (K,) float64 in [0, 1] (0 = not given).
        score: the person's confidence in [0, 1].
        world_m: (K, 3) float64 metric landmarks in camera axes (x right, y down, z forward),
            origin anywhere (the fit compares shapes about the visible keypoints' centroid), NaN
            rows = not given; or None when there are no 3D landmarks for this person.
        source: what produced the keypoints (e.g. ``blazepose``, ``movenet``), for reports.
        landmarks: the BlazePose result the keypoints came from, or None (kept for diagnostics).
    """

    bbox_xyxy: np.ndarray
    keypoints_px: np.ndarray
    keypoint_scores: np.ndarray
    score: float
    world_m: np.ndarray | None = None
    source: str = ""
    landmarks: PoseLandmarks | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.bbox_xyxy = np.asarray(self.bbox_xyxy, np.float64).reshape(4)
        self.keypoints_px = np.asarray(self.keypoints_px, np.float64)
        self.keypoint_scores = np.asarray(self.keypoint_scores, np.float64).reshape(-1)
        K = len(self.keypoint_scores)
        if K not in (NUM_COCO, NUM_KEYPOINTS) or self.keypoints_px.shape != (K, 2):
            raise ValueError(
                "[offline] PersonKeypoints needs keypoints_px (K, 2) and keypoint_scores (K,) "
                f"with K = 17 (COCO-17) or 23 (+ feet), got {self.keypoints_px.shape} and "
                f"{self.keypoint_scores.shape}"
            )
        if self.world_m is not None:
            self.world_m = np.asarray(self.world_m, np.float64)
            if self.world_m.shape != (K, 3):
                raise ValueError(
                    f"[offline] PersonKeypoints.world_m must be ({K}, 3), got {self.world_m.shape}"
                )
        self.score = float(self.score)


def ray_rotation(uv_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking the optical axis (0, 0, 1) onto the camera ray through pixel
    ``uv_px``.

    BlazePose's world landmarks are expressed in axes aligned with the crop it saw, i.e. looking
    along the ray to the person; a person at the image edge of a 60 degree camera is seen ~30
    degrees off-axis.
    """
    return rotation_between(np.array([0.0, 0.0, 1.0]), unproject(np.asarray(uv_px, np.float64), K))


def from_blazepose(landmarks: PoseLandmarks, K: np.ndarray) -> PersonKeypoints:
    """BlazePose's 33 landmarks -> the 23 Anny keypoints, world landmarks rotated into camera axes.

    Args:
        landmarks: one person's BlazePose result (original-image pixels).
        K: (3, 3) intrinsics of the original image, pixels.
    """
    idx = BLAZEPOSE_FOR_ANNY
    has = idx >= 0
    uv = np.full((NUM_KEYPOINTS, 2), np.nan)
    world = np.full((NUM_KEYPOINTS, 3), np.nan)
    scores = np.zeros(NUM_KEYPOINTS)
    uv[has] = landmarks.uv_px[idx[has]]
    scores[has] = landmarks.visibility[idx[has]]
    hip_uv = 0.5 * (landmarks.uv_px[23] + landmarks.uv_px[24])
    world[has] = landmarks.world_m[idx[has]] @ ray_rotation(hip_uv, K).T
    return PersonKeypoints(
        landmarks.bbox_xyxy,
        uv,
        scores,
        landmarks.score,
        world,
        source="blazepose",
        landmarks=landmarks,
    )


def with_world(person: PersonKeypoints, blazepose: PersonKeypoints) -> PersonKeypoints:
    """A detector's COCO-17 person completed by BlazePose: its foot points and its metric 3D
    landmarks.

    The caller decides that BlazePose looked at the same person (e.g. its 2D landmarks lie within a
    fraction of the person's size of the detector's keypoints); this function only merges. The
    detector's 17 keypoints and scores are kept; BlazePose adds the feet (2D) and the world
    landmarks of all 23 keypoints.

    Args:
        person: the detector's person, K = 17 (or 23: its own feet are kept).
        blazepose: the same person from :func:`from_blazepose`.
    """
    uv = np.array(blazepose.keypoints_px)
    scores = np.array(blazepose.keypoint_scores)
    n = len(person.keypoint_scores)
    uv[:n], scores[:n] = person.keypoints_px, person.keypoint_scores
    return PersonKeypoints(
        person.bbox_xyxy,
        uv,
        scores,
        person.score,
        blazepose.world_m,
        source=f"{person.source}+blazepose" if person.source else "blazepose",
        landmarks=blazepose.landmarks,
    )


#: Keypoints within this many pixels of the image border are unknown (a clamped guess, not a seen
#: joint).
BORDER_PX = 2.0


def fit_targets(
    people: list[PersonKeypoints],
    image_wh: tuple[int, int],
    min_score: float = 0.3,
    border_px: float = BORDER_PX,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stack people into the fit's (P, 23) targets; unknown keypoints get zero weight.

    A keypoint is used when its score is at least ``min_score`` AND it lies inside the image,
    ``border_px`` away from its edges: a keypoint outside the image (or clamped onto its border) is
    unknown (where a cut-off limb is cannot be seen), not "at the border".

    Args:
        people: P people.
        image_wh: (W, H) of the image, pixels.
        min_score: keypoints scored below this are unknown.
        border_px: keypoints closer than this to the image border are unknown, pixels.

    Returns:
        world: (P, 23, 3) metric landmarks in camera axes, NaN where unknown or not given.
        uv: (P, 23, 2) pixels, NaN where unknown.
        conf: (P, 23) weights (score x :data:`KEYPOINT_WEIGHTS`), 0 where unknown.
        has_world: (P,) bool, the person came with 3D landmarks.
    """
    W, H = image_wh
    P = len(people)
    world = np.full((P, NUM_KEYPOINTS, 3), np.nan)
    uv = np.full((P, NUM_KEYPOINTS, 2), np.nan)
    conf = np.zeros((P, NUM_KEYPOINTS))
    has_world = np.zeros(P, bool)
    for p, person in enumerate(people):
        n = len(person.keypoint_scores)
        xy = person.keypoints_px
        with np.errstate(invalid="ignore"):
            m = border_px
            inside = (
                (xy[:, 0] >= m)
                & (xy[:, 0] <= W - 1 - m)
                & (xy[:, 1] >= m)
                & (xy[:, 1] <= H - 1 - m)
            )
        score = np.nan_to_num(person.keypoint_scores)
        use = inside & (score >= min_score) & np.isfinite(xy).all(1)
        uv[p, :n][use] = xy[use]
        conf[p, :n] = np.where(use, score, 0.0) * KEYPOINT_WEIGHTS[:n]
        if person.world_m is not None:
            has_world[p] = True
            world[p, :n][use] = person.world_m[use]
    return world, uv, conf, has_world
