"""Official-style training augmentation (spec mahmr_model §4.5, §5.2) with exact camera
bookkeeping.

Every geometric change of the image is matched by a change of the intrinsics K and, where the 3D
scene is affected, of the camera-frame SMPL parameters, so that the GT meshes still project onto
the people:

* rotation theta + zoom s about the image centre c: u' = s R2(theta) (u - c) + c. This equals a
  camera roll R3 about the optical axis, f' = s f and pp' = s R2 (pp - c) + c; people get R_glob' =
  R3 R_glob and t' = R3 (J0 + t) - J0 (SMPL rotates about its rest root joint J0).
* horizontal flip: u' = W - 1 - u; the scene is mirrored by M = diag(-1, 1, 1): cx' = W - 1 - cx,
  SMPL-24 joints swap sides with the flipped axis-angle (x, -y, -z) (spec §3.4) and t' = M (J0 +
  t) - J0.
* crop (probability ``crop``): keep the top rows down to a height drawn from Beta(2, 5) between
  max(lowest spine3 row, H/2) and H; K is unchanged (top-left origin).
* photometric: brightness / contrast / saturation jitter (ColorJitter(0.2, 0.2, 0.2) semantics)
  and, per person with probability 0.6, a random-noise rectangle over up to 30 % of its box (aspect
  0.5-2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mahmr_ros.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

#: Horizontal-flip permutation of the SMPL-24 joints (spec §3.4).
SMPL_FLIP_PERM = [
    0,
    2,
    1,
    3,
    5,
    4,
    6,
    8,
    7,
    9,
    11,
    10,
    12,
    14,
    13,
    15,
    17,
    16,
    19,
    18,
    21,
    20,
    23,
    22,
]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (official stage 1-3 values by default; ``none()`` for evaluation)."""

    rot_deg: float = 15.0
    scale_range: tuple[float, float] = (0.8, 1.8)
    flip: float = 0.5
    crop: float = 0.8
    color: float = 0.2
    occlusion: float = 0.6
    occlusion_max_area: float = 0.3

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, 0.0)


def rotate_people(poses: np.ndarray, transl: np.ndarray, j0: np.ndarray, R: np.ndarray):
    """Rotate people by a camera-frame R (3, 3): (P, 72), (P, 3) m, J0 (P, 3) m -> new poses,
    transl."""
    poses = np.asarray(poses, np.float64).copy()
    poses[:, :3] = rotmat_to_axis_angle(R @ axis_angle_to_rotmat(poses[:, :3]))
    transl = (np.asarray(j0, np.float64) + transl) @ R.T - j0
    return poses.astype(np.float32), transl.astype(np.float32)


def flip_people(poses: np.ndarray, transl: np.ndarray, j0: np.ndarray):
    """Mirror people through the camera's x = 0 plane: (P, 72), (P, 3), J0 (P, 3) -> new poses,
    transl."""
    aa = np.asarray(poses, np.float32).reshape(-1, 24, 3)[:, SMPL_FLIP_PERM] * np.array(
        [1, -1, -1], np.float32
    )
    mirror = np.array([-1.0, 1.0, 1.0])
    transl = (np.asarray(j0, np.float64) + transl) * mirror - j0
    return aa.reshape(-1, 72), transl.astype(np.float32)


def affine(image: np.ndarray, K: np.ndarray, angle_rad: float, scale: float):
    """Rotate (counter-clockwise on screen for angle > 0) and zoom an image about its centre.

    Returns:
        image (same size), K' (3, 3), R3 (3, 3) camera roll to apply to the people.
    """
    H, W = image.shape[:2]
    c = np.array([W / 2, H / 2])
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    R2 = np.array([[cos, sin], [-sin, cos]])
    A = np.concatenate([scale * R2, (c - scale * R2 @ c)[:, None]], 1)
    out = cv2.warpAffine(image, A, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    K = np.asarray(K, np.float64).copy()
    K[0, 0] *= scale
    K[1, 1] *= scale
    K[:2, 2] = scale * R2 @ (K[:2, 2] - c) + c
    R3 = np.eye(3)
    R3[:2, :2] = R2
    return out, K.astype(np.float32), R3


def crop_height(H: int, lowest_spine_y: float, rng: np.random.Generator) -> int:
    """Rows kept by the top crop: Beta(2, 5) between max(lowest spine3 row, H/2) and H."""
    lo = min(max(float(lowest_spine_y), H / 2), H)
    return int(np.clip(round(lo + rng.beta(2, 5) * (H - lo)), 1, H))


def color_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation factors in [1 - strength, 1 + strength] (BGR
    uint8)."""
    if strength <= 0:
        return image
    img = image.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    img = img * b
    img = (img - img.mean()) * c + img.mean()
    gray = img @ np.array([0.114, 0.587, 0.299], np.float32)
    img = (img - gray[..., None]) * s + gray[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def occlude(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    prob: float,
    max_area: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Paste a noise rectangle (<= ``max_area`` of the box, aspect 0.5-2) into each box w.p.
    ``prob``."""
    image = image.copy()
    H, W = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, np.float64).reshape(-1, 4):
        bw, bh = x2 - x1, y2 - y1
        if bw < 2 or bh < 2 or rng.random() >= prob:
            continue
        area = rng.uniform(0.02, max_area) * bw * bh
        aspect = rng.uniform(0.5, 2.0)
        w = int(min(bw, math.sqrt(area * aspect)))
        h = int(min(bh, math.sqrt(area / aspect)))
        x = int(np.clip(x1 + rng.uniform(0, bw - w), 0, W - 1))
        y = int(np.clip(y1 + rng.uniform(0, bh - h), 0, H - 1))
        patch = image[y : y + h, x : x + w]
        patch[...] = rng.integers(0, 256, patch.shape, dtype=np.uint8)
    return image
