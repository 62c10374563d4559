"""The test-only estimator ``test_known``: returns the people a test chooses, records the frames it
saw.

Test images are filled with a frame number (pixel value), so a test can tell which frames of a
burst were processed and which were dropped. Plain Python (no pytest), so a node started as its own
process (``node_process.py``) can register it too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from mahmr_ros.pipeline import register_estimator
from mahmr_ros.types import Estimation, FloorEstimate, HumanEstimate, MeshTopology

# A unit box mesh: 8 vertices, 12 triangles (counter-clockwise seen from outside).
BOX_VERTICES = np.array(
    [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=np.float32
)
BOX_FACES = np.array(
    [
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
    ],
    dtype=np.uint32,
)  # fmt: skip
JOINT_NAMES = ["pelvis", "head"]
# Upright person facing the camera: SMPL canonical (x left, y up, z front) -> camera (x right, y
# down, z fwd).
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])


def make_human(
    pelvis=(0.2, -0.1, 3.0),
    orientation=FACING_CAMERA,
    track_id="",
    score=0.9,
    height_m=1.75,
    size_m=0.5,
) -> HumanEstimate:
    """A known person: a box of ``size_m`` around the pelvis, 2 joints (pelvis, head), 24
    rotations."""
    pelvis = np.asarray(pelvis, np.float32)
    rotmats = np.tile(np.eye(3, dtype=np.float32), (24, 1, 1))
    rotmats[0] = orientation
    joints = np.stack([pelvis, pelvis + np.array([0.0, -0.6, 0.0], np.float32)])
    return HumanEstimate(
        score=score,
        bbox_xyxy=[100, 50, 180, 230],
        rotmats=rotmats,
        betas=np.arange(11, dtype=np.float32) * 0.1,
        transl=pelvis - np.array([0.0, 0.2, 0.0], np.float32),
        vertices=BOX_VERTICES * size_m + pelvis,
        joints=joints,
        focal=[500, 500],
        principal_point=[160, 120],
        height_m=height_m,
        is_child=False,
        track_id=track_id,
        body_model="test_box",
        pelvis=pelvis,
    )


@dataclass
class KnownEstimatorSettings:
    """What ``test_known`` returns and how slow it is; reset before every test."""

    humans: list[HumanEstimate] = field(default_factory=lambda: [make_human()])
    delay_s: float = 0.0
    floor: FloorEstimate | None = None
    seen_frames: list[int] = field(default_factory=list)
    seen_K: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


SETTINGS = KnownEstimatorSettings()


class KnownEstimator:
    """Returns ``SETTINGS.humans`` for every frame after ``SETTINGS.delay_s`` seconds."""

    body_model = "test_box"

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.closed = False

    def topology(self) -> MeshTopology:
        return MeshTopology(self.body_model, BOX_FACES, JOINT_NAMES)

    def estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation:
        with SETTINGS.lock:
            SETTINGS.seen_frames.append(int(image_bgr[0, 0, 0]))
            SETTINGS.seen_K.append(None if K is None else np.array(K))
        if SETTINGS.delay_s:
            time.sleep(SETTINGS.delay_s)
        K_used = (
            K if K is not None else np.array([[400, 0, 160], [0, 400, 120], [0, 0, 1]], np.float64)
        )
        humans = [h.replace() for h in SETTINGS.humans]
        return Estimation(humans, K_used, K is None, {"known": 0.0}, floor=SETTINGS.floor)

    def close(self) -> None:
        self.closed = True


register_estimator("test_known", KnownEstimator)
