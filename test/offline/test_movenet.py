"""MoveNet runners: crop geometry (hand-worked), crop-to-image mapping (translation), MultiPose vs
Thunder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mahmr_ros.offline.movenet import MoveNetMultiPose, MoveNetSingle, square_crop_transform

IMAGE = Path(__file__).parent / "data" / "astronaut_256.png"
ASTRONAUT_BOX = np.array([9.0, 7.0, 181.0, 256.0])  # hand-checked, see test_people2d.py


@pytest.fixture(scope="module")
def image():
    import cv2

    return cv2.imread(str(IMAGE), cv2.IMREAD_COLOR)


def test_square_crop_hand_worked():
    # box 20 x 40 centred at (20, 40): square side 40 * 1.25 = 50 from (-5, 15); 100 px crop: 2 px
    # per px
    M, (left, top, side) = square_crop_transform(np.array([10, 20, 30, 60]), 1.25, 100)
    assert (left, top, side) == (-5, 15, 50)
    corners = np.array([[-5, 15, 1], [45, 65, 1], [20, 40, 1]], float) @ M.T
    np.testing.assert_allclose(corners, [[0, 0], [100, 100], [50, 50]])


@pytest.mark.parametrize("variant", ["thunder", "lightning"])
def test_keypoints_move_with_the_image(image, variant):
    # the same crop pixels at another place in a larger frame must give the same keypoints, shifted
    model = MoveNetSingle(variant)
    kp, score = model(image, ASTRONAUT_BOX[None])
    shift = np.array([70.0, 30.0])
    big = np.zeros((400, 400, 3), np.uint8)
    big[30:286, 70:326] = image
    kp_big, score_big = model(big, (ASTRONAUT_BOX + np.tile(shift, 2))[None])
    # the crop extends past the photo on the left and bottom: black there in both frames
    np.testing.assert_allclose(kp_big[0], kp[0] + shift, atol=0.05)
    np.testing.assert_allclose(score_big, score, atol=1e-4)
    assert kp.shape == (1, 17, 2) and score.shape == (1, 17)


def test_multipose_agrees_with_thunder_on_the_face(image):
    kp_thunder, _ = MoveNetSingle("thunder")(image, ASTRONAUT_BOX[None])
    boxes, scores, kps, kp_scores = MoveNetMultiPose(256)(image)
    assert boxes.shape == (6, 4) and kps.shape == (6, 17, 2) and kp_scores.shape == (6, 17)
    assert scores[0] > 0.3 and scores[0] == scores.max()
    # nose, eyes and ears within 8 px between the two models (the face is ~50 px across); the
    # shoulders, hidden under the suit's ring, within 15 px
    np.testing.assert_allclose(kps[0, :5], kp_thunder[0, :5], atol=8)
    np.testing.assert_allclose(kps[0, 5:7], kp_thunder[0, 5:7], atol=15)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="variant"):
        MoveNetSingle("heavy")
    with pytest.raises(ValueError, match="multiple of 32"):
        MoveNetMultiPose(300)


def test_joints_clamped_to_the_crop_edge_get_score_zero(image):
    """A box around the astronaut's head and shoulders only: MoveNet puts the hips it cannot see on
    the crop's bottom edge (which lies inside the photo); those keypoints are guesses, scored 0."""
    from mahmr_ros.offline.movenet import CROP_EDGE

    model = MoveNetSingle("lightning")
    head = np.array([40.0, 7.0, 170.0, 110.0])
    kp, score = model(image, head[None])
    _, (left, top, side) = square_crop_transform(head, model.crop_scale, model.size)
    rel = (kp[0] - [left, top]) / side  # normalised crop coordinates
    on_edge = ((rel < CROP_EDGE) | (rel > 1 - CROP_EDGE)).any(1)
    assert on_edge[11:14].all()  # both hips and a knee: clamped onto the bottom edge
    assert np.all(score[0][on_edge] == 0.0)
    assert score[0][[0, 1, 2]].min() > 0.3  # the face inside the crop keeps its scores
