"""MoveNet COCO-17 keypoints with onnxruntime: single-person on person crops, MultiPose on the
whole frame.

Both take RGB int32 NHWC input (values 0-255) and return, per keypoint, ``(y, x, score)`` with y
and x normalised to the network input (0 = top/left edge, 1 = bottom/right edge; the MoveNet model
cards).

* :class:`MoveNetSingle` (Thunder 256 px or Lightning 192 px): one person, centred in a square crop
  cut around a detector box with a margin (``crop_scale``); out-of-image parts of the crop are
  black. The converted graph has a fixed batch of one, so crops run one after another.
* :class:`MoveNetMultiPose` (Lightning MultiPose): up to 6 people bottom-up; the frame is scaled so
  its longer side is ``input_size`` and padded (bottom/right) to multiples of 32. Each of the 6
  rows of its output is 17 keypoints then ``ymin, xmin, ymax, xmax, score``.
"""

from __future__ import annotations

import numpy as np

from mahmr_ros.offline.human_models import load_session

#: COCO-17 keypoint order (MoveNet's output order).
COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
SINGLE_VARIANTS = {"thunder": ("movenet-thunder", 256), "lightning": ("movenet-lightning", 192)}
#: MoveNet single-pose puts a joint cut off by its crop on the crop's edge (normalised coordinate
#: ~0.97-1.0 or ~0-0.03, often with a fair score), and the crop's edge can lie inside the image (a
#: box around part of a person): keypoints this close to the crop edge (fraction of the crop side)
#: get score 0, a guess and not a seen joint.
CROP_EDGE = 0.02


def square_crop_transform(
    box_xyxy_px: np.ndarray, crop_scale: float, size: int
) -> tuple[np.ndarray, float]:
    """Affine (2, 3) mapping image pixels into a ``size`` x ``size`` crop centred on the box.

    The crop is a square of side ``crop_scale * max(box width, box height)`` (image pixels).

    Returns:
        M (2, 3) float64 image -> crop, and (x0, y0, side) of the crop in the image (packed as
        floats).
    """
    x0, y0, x1, y1 = np.asarray(box_xyxy_px, np.float64)
    side = max(x1 - x0, y1 - y0, 1.0) * crop_scale
    left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
    s = size / side
    M = np.array([[s, 0.0, -left * s], [0.0, s, -top * s]])
    return M, (left, top, side)


class MoveNetSingle:
    """MoveNet single-person keypoints on crops around given boxes.

    Args:
        variant: ``"thunder"`` (256 px, more accurate) or ``"lightning"`` (192 px, ~3x cheaper).
        crop_scale: crop side over the box's longer side (MoveNet wants the whole person with some
            context).
        threads: onnxruntime intra-op threads.
        workers: crops run concurrently on this many threads (onnxruntime releases the GIL while it
            runs; a 192 px crop is too small for intra-op threads to pay, whole crops side by side
            do).
    """

    def __init__(
        self,
        variant: str = "thunder",
        crop_scale: float = 1.25,
        threads: int = 1,
        workers: int = 1,
    ):
        if variant not in SINGLE_VARIANTS:
            raise ValueError(
                f"[offline] MoveNet variant must be one of {list(SINGLE_VARIANTS)}, got {variant}"
            )
        model, self.size = SINGLE_VARIANTS[variant]
        self.variant = variant
        self.crop_scale = crop_scale
        self.session = load_session(model, threads)
        self._input = self.session.get_inputs()[0].name
        if workers < 1:
            raise ValueError(f"[offline] workers must be >= 1, got {workers}")
        self.workers = workers

    def __call__(
        self, image_bgr: np.ndarray, boxes_xyxy_px: np.ndarray, crop_scale: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of the person in each box.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            boxes_xyxy_px: (P, 4) person boxes, original image pixels.
            crop_scale: this call's crop scale (default: the constructor's).

        Returns:
            keypoints (P, 17, 2) float64 px (x, y) in the original image, COCO-17 order; scores (P,
            17), 0-1 (0 for keypoints on the crop's edge, :data:`CROP_EDGE`).
        """
        boxes = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
        keypoints = np.zeros((len(boxes), 17, 2))
        scores = np.zeros((len(boxes), 17))
        scale = crop_scale or self.crop_scale
        results = run_concurrently(
            lambda box: self._one(image_bgr, box, scale), boxes, self.workers
        )
        for i, (kp, sc) in enumerate(results):
            keypoints[i], scores[i] = kp, sc
        return keypoints, scores

    def _one(
        self, image_bgr: np.ndarray, box: np.ndarray, crop_scale: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(17, 2) keypoints px and (17,) scores of the person in one box."""
        import cv2

        M, (left, top, side) = square_crop_transform(box, crop_scale, self.size)
        crop = cv2.warpAffine(
            image_bgr, M, (self.size, self.size), flags=cv2.INTER_LINEAR, borderValue=0
        )
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.int32)[None]
        (out,) = self.session.run(None, {self._input: rgb})  # (1, 1, 17, 3) y, x, score
        yx = out[0, 0, :, :2].astype(np.float64)
        keypoints = np.stack([left + yx[:, 1] * side, top + yx[:, 0] * side], axis=1)
        on_edge = ((yx < CROP_EDGE) | (yx > 1.0 - CROP_EDGE)).any(1)
        return keypoints, np.where(on_edge, 0.0, out[0, 0, :, 2])


_POOLS: dict = {}


def run_concurrently(fn, items, workers: int) -> list:
    """``[fn(item) for item in items]``, on up to ``workers`` threads (a shared pool per size), in
    order."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="offline-onnx"
        )
    return list(pool.map(fn, items))


class MoveNetMultiPose:
    """MoveNet MultiPose: up to 6 people with keypoints from one pass over the frame.

    Args:
        input_size: the frame's longer side in network pixels (a multiple of 32; 256 is the model's
            native size, larger finds smaller people at a higher cost).
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, input_size: int = 256, threads: int = 1):
        if input_size % 32 or input_size < 64:
            raise ValueError(
                f"[offline] MultiPose input_size must be a multiple of 32 >= 64, got {input_size}"
            )
        self.input_size = input_size
        self.session = load_session("movenet-multipose", threads)
        self._input = self.session.get_inputs()[0].name

    def __call__(
        self, image_bgr: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """People in a frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.

        Returns:
            boxes (6, 4) xyxy px, scores (6,), keypoints (6, 17, 2) px (x, y), keypoint scores (6,
            17); every row the model returns, best first (filter by score).
        """
        import cv2

        H, W = image_bgr.shape[:2]
        scale = self.input_size / max(H, W)
        w, h = max(1, round(W * scale)), max(1, round(H * scale))
        net_w, net_h = -(-w // 32) * 32, -(-h // 32) * 32
        net = np.zeros((net_h, net_w, 3), np.uint8)
        net[:h, :w] = cv2.cvtColor(
            cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        (out,) = self.session.run(None, {self._input: net.astype(np.int32)[None]})
        rows = out[0].astype(np.float64)  # (6, 56)
        to_px = np.array(
            [net_w / w * W, net_h / h * H]
        )  # normalised network coords -> original px (x, y)
        kp = rows[:, :51].reshape(-1, 17, 3)
        keypoints = kp[:, :, [1, 0]] * to_px
        ymin, xmin, ymax, xmax, score = rows[:, 51:].T
        boxes = np.stack(
            [xmin * to_px[0], ymin * to_px[1], xmax * to_px[0], ymax * to_px[1]], axis=1
        )
        order = np.argsort(-score)
        return boxes[order], score[order], keypoints[order], kp[order, :, 2]
