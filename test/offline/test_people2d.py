"""People + COCO-17 keypoints on a real photo: scikit-image's ``astronaut`` (NASA, public domain).

``data/astronaut_256.png`` is ``skimage/data/astronaut.png`` (scikit-image 0.26.0 wheel) scaled to
256x256 with OpenCV's INTER_AREA and its colours quantised to 6 bits (to stay under 100 KB). The
hand-checked box of the astronaut (head top to the image's bottom edge, shoulder to shoulder; the
helmet she holds is not her) is :data:`ASTRONAUT_BOX`; her nose tip is at about
:data:`ASTRONAUT_NOSE` (both read off a 10 px grid by eye).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mahmr_ros.offline.people2d import HEAD_TOP_FACTOR, PeopleDetector, box_from_keypoints

IMAGE = Path(__file__).parent / "data" / "astronaut_256.png"
ASTRONAUT_BOX = np.array([9.0, 7.0, 181.0, 256.0])
ASTRONAUT_NOSE = np.array([113.0, 64.0])


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.fixture(scope="module")
def image():
    import cv2

    return cv2.imread(str(IMAGE), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def detector():
    det = PeopleDetector(keypoints="thunder", track_keypoints="lightning", max_people=4)
    yield det
    det.close()


def assert_sensible_astronaut(person, min_score: float = 0.5) -> None:
    kp, score = person.keypoints_px, person.keypoint_scores
    assert iou(person.bbox_xyxy_px, ASTRONAUT_BOX) > 0.75
    assert np.linalg.norm(kp[0] - ASTRONAUT_NOSE) < 10  # nose, px
    assert score[[0, 1, 2, 5, 6]].min() > min_score  # nose, eyes, shoulders are plainly visible
    assert kp[1, 1] < kp[0, 1] and kp[2, 1] < kp[0, 1]  # eyes above the nose
    assert kp[0, 1] < kp[5, 1] - 40 and kp[0, 1] < kp[6, 1] - 40  # nose well above the shoulders
    # she faces the camera: her left shoulder/eye are on the image's right
    assert kp[5, 0] > kp[0, 0] > kp[6, 0] and kp[1, 0] > kp[2, 0]
    assert kp[11, 1] > kp[5, 1] + 80  # hips (at the bottom edge) far below the shoulders


@pytest.mark.parametrize("keypoints", ["thunder", "lightning"])
def test_detect_finds_the_astronaut_with_sensible_keypoints(image, keypoints):
    det = PeopleDetector(keypoints=keypoints)
    people = det.detect(image)
    det.close()
    assert len(people) == 1  # the helmet she holds and the shuttle model are not people
    person = people[0]
    assert person.bbox_xyxy_px.shape == (4,) and person.keypoints_px.shape == (17, 2)
    assert person.keypoint_scores.shape == (17,) and 0.3 < person.score <= 1.0
    assert_sensible_astronaut(person)


def test_multipose_finds_the_astronaut_at_its_native_size(image):
    det = PeopleDetector(keypoints="multipose", multipose_size=256)
    people = det.detect(image)
    det.close()
    assert len(people) == 1
    assert_sensible_astronaut(people[0])


def test_track_keeps_the_person_and_rederives_the_box(image, detector):
    shifted = ASTRONAUT_BOX + np.array([12, 20, 12, 20])  # last frame's box, a little off
    (person,) = detector.track(image, shifted[None])
    assert_sensible_astronaut(
        person, min_score=0.3
    )  # Lightning (the tracker) is less sure than Thunder
    assert person.score == pytest.approx(person.keypoint_scores.mean())


def test_track_reports_lost_people_in_box_order(image, detector):
    boxes = np.array(
        [
            [200.0, 0.0, 256.0, 110.0],  # the shuttle model: nobody
            ASTRONAUT_BOX,
            ASTRONAUT_BOX + 3,  # the same person again: the earlier box keeps her
        ]
    )
    lost, person, duplicate = detector.track(image, boxes)
    assert lost is None and duplicate is None
    assert_sensible_astronaut(person, min_score=0.3)


def test_max_people_caps_the_result(image):
    import cv2

    # three astronauts side by side, each at the size of the original
    row = np.concatenate([image, image, image], axis=1)
    det = PeopleDetector(keypoints="thunder", max_people=2)
    people = det.detect(row)
    det.close()
    assert len(people) == 2
    centres = sorted(p.keypoints_px[0, 0] for p in people)
    assert centres[1] - centres[0] > 200  # two different people, not one twice
    det = PeopleDetector(keypoints="thunder", max_people=20)
    assert len(det.detect(row)) == 3
    assert len(det.detect(cv2.flip(row, 1))) == 3
    det.close()


def test_box_from_keypoints_hand_worked():
    kp = np.zeros((17, 2))
    scores = np.zeros(17)
    kp[[15, 16]] = [[40, 200], [60, 200]]  # ankles
    kp[[11, 12]] = [[45, 120], [55, 120]]  # hips
    scores[[11, 12, 15, 16]] = 0.9
    # no face seen: margins from the keypoint box height (80 px), BOX_MARGINS = 0.07, 0.10, 0.07,
    # 0.09
    np.testing.assert_allclose(
        box_from_keypoints(kp, scores), [40 - 5.6, 120 - 8, 60 + 5.6, 200 + 7.2]
    )
    kp[[0, 5, 6]] = [[50, 20], [40, 50], [60, 50]]  # nose 30 px above the shoulders
    scores[[0, 5, 6]] = 0.9
    box = box_from_keypoints(kp, scores)
    assert box[1] == pytest.approx(20 - HEAD_TOP_FACTOR * 30)
    assert box_from_keypoints(kp, np.zeros(17)) is None


@pytest.mark.parametrize(
    "bad,message",
    [(np.zeros((10, 10), np.uint8), "H, W, 3"), (np.zeros((10, 10, 3), np.float32), "uint8")],
)
def test_bad_images_are_rejected_clearly(detector, bad, message):
    with pytest.raises(ValueError, match=message):
        detector.detect(bad)
    with pytest.raises(ValueError, match=message):
        detector.track(bad, np.zeros((1, 4)))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="keypoints must be one of"):
        PeopleDetector(keypoints="posenet")
    with pytest.raises(ValueError, match="max_people"):
        PeopleDetector(max_people=0)


def test_keypoints_of_a_neighbour_do_not_fit_the_box():
    # a standing person 100 px tall in the box (40, 20, 80, 120); keypoints hand-placed on them
    kp = np.array(
        [[60, 30], [63, 28], [57, 28], [66, 30], [54, 30],
         [70, 45], [50, 45], [72, 65], [48, 65], [72, 80], [48, 80],
         [66, 80], [54, 80], [66, 98], [54, 98], [66, 115], [54, 115]], float
    )  # fmt: skip
    scores = np.full(17, 0.8)
    box = np.array([40.0, 20.0, 80.0, 120.0])
    assert PeopleDetector._keypoints_fit_box(kp, scores, box)
    # the same skeleton with its head 12 px above the box top (the neighbour behind): rejected
    taller = kp.copy()
    taller[:5, 1] -= 22
    assert not PeopleDetector._keypoints_fit_box(taller, scores, box)
    # shifted sideways by most of a box width: the keypoint box no longer overlaps enough
    assert not PeopleDetector._keypoints_fit_box(kp + [35, 0], scores, box)


def test_a_closed_detector_says_so(image):
    det = PeopleDetector(keypoints="lightning")
    det.close()
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(image)
