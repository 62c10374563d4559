"""NanoDet runner: GFL box decoding against hand-worked numbers, NMS, and the real model on a real
photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mahmr_ros.offline import nanodet
from mahmr_ros.offline.nanodet import NanoDet, nms_xyxy

IMAGE = Path(__file__).parent / "data" / "astronaut_256.png"
ASTRONAUT_BOX = np.array([9.0, 7.0, 181.0, 256.0])  # hand-checked, see test_people2d.py


class _Output:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class FakeNanoDetSession:
    """Stands in for the onnxruntime session of the converted NanoDet: same input/output names,
    shapes and ``run`` signature; returns the outputs it was given instead of running a network."""

    def __init__(self, outputs: dict[str, np.ndarray]):
        self.outputs = outputs
        self.fed = []

    def get_inputs(self):
        return [_Output("input_1", [1, 3, 416, 416])]

    def get_outputs(self):
        return [_Output(name, list(v.shape)) for name, v in self.outputs.items()]

    def run(self, names, feed):
        self.fed.append(feed["input_1"])
        return [self.outputs[n] for n in names]


def _empty_outputs():
    out = {}
    for k, stride in enumerate(nanodet.STRIDES):
        n = (416 // stride) ** 2
        out[f"Identity_{k}"] = np.zeros((1, n, 80), np.float32)  # sigmoid scores
        out[f"Identity_{k + 3}"] = np.zeros((1, n, 44), np.float32)  # 4 x 11 distance logits
    return out


def test_gfl_decoding_hand_worked(monkeypatch):
    outputs = _empty_outputs()
    row, col = (
        10,
        20,
    )  # stride-8 anchor point: ((20 + 0.5) * 8, (10 + 0.5) * 8) = (164, 84) network px
    index = row * 52 + col
    outputs["Identity_0"][0, index, 0] = 0.9  # person
    outputs["Identity_0"][0, index + 1, 2] = 0.9  # a car next to it: not a person, ignored
    logits = np.full((4, 11), -30.0, np.float32)
    for side, bins in enumerate([2, 3, 4, 5]):  # left, top, right, bottom: all mass on one bin
        logits[side, bins] = 30.0
    outputs["Identity_3"][0, index] = logits.reshape(-1)
    session = FakeNanoDetSession(outputs)
    monkeypatch.setattr(nanodet, "load_session", lambda model, threads: session)
    detector = NanoDet(passes=("squash",))
    image = np.zeros((416, 832, 3), np.uint8)  # squashed 2:1 into 416x416: x scales by 2
    boxes, scores = detector.detect(image)
    # network box: (164 - 2*8, 84 - 3*8, 164 + 4*8, 84 + 5*8) = (148, 60, 196, 124); original x
    # doubled
    np.testing.assert_allclose(boxes, [[296, 60, 392, 124]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9], atol=1e-6)
    # the input is BGR minus the official mean over the official std, NCHW: black -> -mean/std
    fed = session.fed[0]
    assert fed.shape == (1, 3, 416, 416)
    np.testing.assert_allclose(fed[0, :, 0, 0], -nanodet.MEAN_BGR / nanodet.STD_BGR, rtol=1e-6)


def test_nms_hand_worked():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # box 1 overlaps box 0 by 81 / 119 = 0.68 > 0.5; box 3 is box 0 again
    assert list(nms_xyxy(boxes, scores, 0.5)) == [0, 2]
    assert list(nms_xyxy(boxes, scores, 0.7)) == [0, 1, 2]
    assert len(nms_xyxy(np.zeros((0, 4)), np.zeros(0), 0.5)) == 0


@pytest.mark.parametrize("passes", [("squash",), ("letterbox",), ("squash", "letterbox")])
def test_real_nanodet_boxes_the_astronaut(passes):
    import cv2

    image = cv2.imread(str(IMAGE), cv2.IMREAD_COLOR)
    boxes, scores = NanoDet(passes=passes).detect(image)
    assert len(boxes) >= 1 and scores[0] > 0.5
    best = boxes[0]
    inter = np.prod(
        np.clip(
            np.minimum(best[2:], ASTRONAUT_BOX[2:]) - np.maximum(best[:2], ASTRONAUT_BOX[:2]),
            0,
            None,
        )
    )
    union = np.prod(best[2:] - best[:2]) + np.prod(ASTRONAUT_BOX[2:] - ASTRONAUT_BOX[:2]) - inter
    assert inter / union > 0.85
    assert (boxes >= 0).all() and (boxes[:, [2, 3]] <= 256).all()  # clipped to the image


def test_bad_passes_are_rejected():
    with pytest.raises(ValueError, match="passes"):
        NanoDet(passes=("mosaic",))
