"""Box IoU / GIoU / cxcywh on hand-drawn boxes: overlap, none, touching, containment,
degenerate."""

import numpy as np
import pytest
import torch

from mahmr_ros.geometry import box_cxcywh_to_xyxy, box_iou, generalized_box_iou

SQUARE = [0.0, 0.0, 10.0, 10.0]
# (other box, IoU with SQUARE worked by hand)
CASES = [
    ([0.0, 0.0, 10.0, 10.0], 1.0),  # identical
    ([5.0, 0.0, 15.0, 10.0], 50 / 150),  # half overlap: inter 5x10, union 100 + 100 - 50
    ([20.0, 20.0, 30.0, 30.0], 0.0),  # apart
    ([10.0, 0.0, 20.0, 10.0], 0.0),  # touching along an edge: zero-area intersection
    ([2.0, 2.0, 4.0, 4.0], 4 / 100),  # contained: inter = the small box, union = the big one
    ([5.0, 5.0, 5.0, 9.0], 0.0),  # degenerate (zero width) inside SQUARE
    ([8.0, 8.0, 2.0, 2.0], 0.0),  # inverted corners: zero area, not a positive "(-6) x (-6)"
]


@pytest.mark.parametrize(("other", "iou"), CASES)
def test_iou_hand_drawn(other, iou):
    assert box_iou(SQUARE, other) == pytest.approx(iou, abs=1e-15)
    assert box_iou(other, SQUARE) == pytest.approx(iou, abs=1e-15)  # symmetric
    t = box_iou(torch.tensor(SQUARE), torch.tensor(other))
    assert isinstance(t, torch.Tensor) and t.item() == pytest.approx(iou, abs=1e-7)


def test_two_empty_boxes_give_zero_not_nan():
    empty = [3.0, 3.0, 3.0, 3.0]
    assert box_iou(empty, empty) == 0.0
    assert generalized_box_iou(empty, empty) == 0.0
    assert box_iou(torch.tensor(empty), torch.tensor(empty)).item() == 0.0


def test_single_boxes_give_a_float_and_broadcasting_gives_the_pair_matrix():
    value = box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 1, 3, 3.0]))
    assert isinstance(value, float) and value == 1 / 7  # inter 1, union 4 + 4 - 1
    a = np.array([SQUARE, [0.0, 0.0, 2.0, 2.0]])
    b = np.array([other for other, _ in CASES])
    matrix = box_iou(a[:, None], b[None])
    assert matrix.shape == (2, len(CASES))
    np.testing.assert_allclose(matrix[0], [iou for _, iou in CASES], atol=1e-15)
    np.testing.assert_allclose(box_iou(a, a), [1.0, 1.0])  # element-wise pairs


def test_generalized_iou_hand_worked():
    # Apart by one box width: IoU 0, hull 3 x 1 = 3, union 2 -> 0 - (3 - 2) / 3.
    assert generalized_box_iou([0.0, 0, 1, 1], [2.0, 0, 3, 1]) == pytest.approx(-1 / 3)
    assert generalized_box_iou(SQUARE, SQUARE) == pytest.approx(1.0)
    # Containment: the hull is the big box = the union, so GIoU = IoU.
    assert generalized_box_iou(SQUARE, [2.0, 2, 4, 4]) == pytest.approx(0.04)
    t = generalized_box_iou(
        torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[2.0, 0, 3, 1], [0.0, 0, 1, 1]])
    )
    np.testing.assert_allclose(t.numpy(), [-1 / 3, 1.0], rtol=1e-6)


def test_cxcywh_to_xyxy():
    np.testing.assert_array_equal(box_cxcywh_to_xyxy(np.array([5.0, 5.0, 2.0, 4.0])), [4, 3, 6, 7])
    out = box_cxcywh_to_xyxy(torch.tensor([[[0.5, 0.5, 0.2, 0.4]]]))
    assert out.shape == (1, 1, 4)
    np.testing.assert_allclose(out.numpy(), [[[0.4, 0.3, 0.6, 0.7]]], rtol=1e-6)
