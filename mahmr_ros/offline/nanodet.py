"""NanoDet person boxes (COCO class 0) with onnxruntime: official input normalisation, GFL box
decoding, NMS.

The converted NanoDet (416x416, strides 8/16/32, 52x52 + 26x26 + 13x13 anchor points) returns per
level the sigmoid class scores ``(1, N, 80)`` and the box distributions ``(1, N, 4 * 11)``.
Decoding follows Generalized Focal Loss (Li et al., NeurIPS 2020), as NanoDet's head does: each
side's 11 logits are a softmax over distances 0..10 (in units of the level's stride); the expected
distance from the anchor point gives left/top/right/bottom.
Anchor points sit at pixel centres, ``(col + 0.5, row + 0.5) * stride``, row-major (the GFL head of
NanoDet before NanoDet-Plus): checked by eye on vtest frames, where anchors at ``(col, row) *
stride`` put every box about half a stride up and left of its person. Input: BGR minus the official
mean, divided by the official std (NanoDet's configs), NCHW.

A 416x416 network sees a 4:3 frame either squashed (people thinner, the full frame used) or
letterboxed (true shape, one dimension shrunk more); each loses different people, so
:meth:`NanoDet.detect` runs both and merges them with NMS (the issue's measured finding; our
numbers in ``benchmarks/results/people2d.json``).
"""

from __future__ import annotations

import numpy as np

from mahmr_ros.offline.human_models import load_session
from mahmr_ros.offline.movenet import run_concurrently

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10  # 11 distance bins per side
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
PERSON_CLASS = 0
#: Pass names accepted by :class:`NanoDet` (``passes``).
PASSES = ("squash", "letterbox")


def nms_xyxy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first (OpenCV's
    ``NMSBoxes``).

    Args:
        boxes: (N, 4) xyxy px.
        scores: (N,) scores.
        iou_threshold: a box overlapping a kept one by more than this is dropped.
    """
    import cv2

    if len(boxes) == 0:
        return np.zeros(0, int)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), 0.0, iou_threshold)
    return np.asarray(keep, int).reshape(-1)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class NanoDet:
    """Person detector.

    Args:
        passes: which 416x416 views of the frame to run (:data:`PASSES`); boxes of all are merged
            by NMS.
        score_threshold: minimum person score (sigmoid class score) of a box.
        nms_iou: IoU above which two person boxes are one person.
        threads: onnxruntime intra-op threads.
        workers: the passes run concurrently on this many threads (onnxruntime releases the GIL).
    """

    def __init__(
        self,
        passes: tuple[str, ...] = PASSES,
        score_threshold: float = 0.3,
        nms_iou: float = 0.5,
        threads: int = 1,
        workers: int = 1,
    ):
        unknown = set(passes) - set(PASSES)
        if unknown or not passes:
            raise ValueError(f"[offline] NanoDet passes must be some of {PASSES}, got {passes}")
        self.passes = tuple(passes)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.workers = int(workers)
        self.session = load_session("nanodet", threads)
        self._input = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()
        # match outputs to levels by shape: (1, N, 80) scores and (1, N, 44) boxes, N = (416 /
        # stride)^2
        self._names = {}
        for stride in STRIDES:
            n = (INPUT_SIZE // stride) ** 2
            cls = next(o.name for o in outputs if o.shape[1:] == [n, 80])
            reg = next(o.name for o in outputs if o.shape[1:] == [n, 4 * (REG_MAX + 1)])
            self._names[stride] = (cls, reg)
        self._centers = {}
        for stride in STRIDES:
            side = INPUT_SIZE // stride
            rows, cols = np.mgrid[0:side, 0:side]
            self._centers[stride] = (np.stack([cols.ravel(), rows.ravel()], 1) + 0.5).astype(
                np.float32
            ) * stride

    def _views(self, image_bgr: np.ndarray):
        """Yield (network image (416, 416, 3) uint8 BGR, (sx, sy) px-per-network-px, (ox, oy)
        offset px)."""
        import cv2

        H, W = image_bgr.shape[:2]
        if "squash" in self.passes:
            net = cv2.resize(image_bgr, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
            yield net, (W / INPUT_SIZE, H / INPUT_SIZE)
        if "letterbox" in self.passes:
            scale = INPUT_SIZE / max(H, W)
            w, h = max(1, round(W * scale)), max(1, round(H * scale))
            net = np.empty((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
            net[:] = np.round(MEAN_BGR).astype(np.uint8)  # normalises to ~0: "no image"
            net[:h, :w] = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
            yield net, (W / w, H / h)

    def _run(self, net_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One network pass: person boxes (N, 4) xyxy in network pixels and scores (N,),
        thresholded."""
        blob = ((net_bgr.astype(np.float32) - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None]
        names = [n for stride in STRIDES for n in self._names[stride]]
        outputs = dict(
            zip(names, self.session.run(names, {self._input: np.ascontiguousarray(blob)}))
        )
        boxes, scores = [], []
        for stride in STRIDES:
            cls_name, reg_name = self._names[stride]
            score = outputs[cls_name][0, :, PERSON_CLASS]
            keep = np.flatnonzero(score >= self.score_threshold)
            if len(keep) == 0:
                continue
            dist = _softmax(outputs[reg_name][0, keep].reshape(-1, 4, REG_MAX + 1))
            dist = (dist * np.arange(REG_MAX + 1, dtype=np.float32)).sum(
                -1
            ) * stride  # (K, 4) l t r b
            center = self._centers[stride][keep]
            boxes.append(np.concatenate([center - dist[:, :2], center + dist[:, 2:]], axis=1))
            scores.append(score[keep])
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return np.concatenate(boxes), np.concatenate(scores)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes in a frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.

        Returns:
            boxes (P, 4) float64 xyxy px in the original image, clipped to it; scores (P,) in [0,
            1]; best first, after NMS across levels and passes.
        """
        H, W = image_bgr.shape[:2]
        all_boxes, all_scores = [], []
        views = list(self._views(image_bgr))
        for (boxes, scores), (_, (sx, sy)) in zip(
            run_concurrently(lambda view: self._run(view[0]), views, self.workers), views
        ):
            all_boxes.append(boxes.astype(np.float64) * np.array([sx, sy, sx, sy]))
            all_scores.append(scores.astype(np.float64))
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        boxes = np.clip(boxes, 0, [W, H, W, H])
        keep = nms_xyxy(boxes, scores, self.nms_iou)
        return boxes[keep], scores[keep]
