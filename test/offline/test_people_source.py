"""The estimator's person sources: NanoDet + MoveNet (+ BlazePose 3D where it agrees), BlazePose
finders."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.offline.keypoints import PersonKeypoints
from mahmr_ros.offline.people_source import (
    AGREE_MAX_DISTANCE,
    BlazePoseSource,
    DetectorSource,
    blazepose_agrees,
)


def _person(keypoints, scores=None, box=(0.0, 0.0, 100.0, 200.0)):
    scores = np.full(len(keypoints), 0.9) if scores is None else scores
    return PersonKeypoints(np.array(box), np.array(keypoints, float), scores, 0.9)


def test_blazepose_agrees_only_on_the_same_person():
    rng = np.random.default_rng(0)
    kp = rng.uniform([0, 0], [100, 200], (17, 2))
    me = _person(kp)
    near = AGREE_MAX_DISTANCE * 200 * 0.5  # half the allowed median distance (box height 200 px)
    assert blazepose_agrees(me, _person(kp + [near, 0.0]))
    assert not blazepose_agrees(
        me, _person(kp + [2 * AGREE_MAX_DISTANCE * 200, 0.0])
    )  # a neighbour
    swapped = kp.copy()
    swapped[5:17:2], swapped[6:17:2] = kp[6:17:2], kp[5:17:2]  # left/right swapped body joints
    swapped[:5] += [60.0, 0.0]  # and the face elsewhere
    assert not blazepose_agrees(me, _person(swapped))
    few = np.zeros(17)
    few[:5] = 0.9  # only the five face points seen by both: not enough to say
    assert not blazepose_agrees(me, _person(kp, few))


@pytest.fixture(scope="module")
def source():
    src = DetectorSource(blazepose_3d="search")
    yield src
    src.close()


def test_finds_everyone_in_the_sample_and_lifts_those_blazepose_agrees_on(source, sample):
    image, K, info = sample
    people = source.find(image, K)
    assert len(people) == info["num_people"]
    truth = [np.array(p["bbox_xyxy"]) for p in info["people"]]
    for box in truth:
        person = max(people, key=lambda p: _iou(p.bbox_xyxy, box))
        assert _iou(person.bbox_xyxy, box) > 0.7
    given, agreed = source.last_blazepose
    assert given == 3 and agreed >= 2
    lifted = [p for p in people if p.world_m is not None]
    assert len(lifted) == agreed
    for p in lifted:  # MoveNet's 17 keypoints kept, BlazePose's feet and 3D added
        assert p.source == "movenet+blazepose" and len(p.keypoint_scores) == 23
        assert np.isfinite(p.world_m[11:13]).all()
    for p in people:
        if p.world_m is None:
            assert p.source == "movenet" and len(p.keypoint_scores) == 17


def test_follow_keeps_the_people_and_reports_a_lost_one(source, sample):
    image, K, _ = sample
    people = source.find(image, K)
    boxes = np.array([p.bbox_xyxy for p in people])
    followed = source.follow(image, K, boxes)
    assert len(followed) == len(people) and all(p is not None for p in followed)
    for a, b in zip(people, followed):
        assert _iou(a.bbox_xyxy, b.bbox_xyxy) > 0.6
        assert b.world_m is None  # "search": BlazePose runs on full searches only
    hidden = (
        image.copy()
    )  # the first person painted over with the wall: lost, the others still followed
    x0, y0, x1, y1 = np.round(boxes[0]).astype(int)
    hidden[max(y0 - 8, 0) : y1 + 8, max(x0 - 8, 0) : x1 + 8] = np.median(image[:40], axis=(0, 1))
    partly = source.follow(hidden, K, boxes)
    assert partly[0] is None and all(p is not None for p in partly[1:])


def test_a_search_reuses_the_people_followed_in_the_frame(source, sample, monkeypatch):
    """A full search after a loss skips the keypoint runs of the people already followed in that
    frame."""
    image, K, info = sample
    boxes = np.array([p.bbox_xyxy for p in source.find(image, K)])
    followed = source.follow(image, K, boxes)
    model = source.detector._single[source.detector.keypoints]
    crops = []
    call = model.__call__
    monkeypatch.setattr(
        type(model),
        "__call__",
        lambda self, im, b, **kw: crops.append(len(b)) or call(im, b, **kw),
    )
    again = source.find(
        image, K, known=followed[1:]
    )  # two people known: one keypoint run, the first person
    assert len(again) == info["num_people"] and crops == [1]
    for box in boxes:
        assert max(_iou(p.bbox_xyxy, box) for p in again) > 0.6


def test_blazepose_source_wraps_the_finder(sample):
    image, K, info = sample
    src = BlazePoseSource("hog+blazepose")
    try:
        people = src.find(image, K)
    finally:
        src.close()
    assert len(people) == info["num_people"]
    assert all(p.source == "blazepose" and p.world_m is not None for p in people)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="blazepose_3d"):
        DetectorSource(blazepose_3d="sometimes")


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union
