"""Multi-person detection on the bundled sample: every strategy finds the people who are there."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.geometry import box_iou
from mahmr_ros.offline.detect import HogPeopleDetector, PersonFinder, match_boxes


def test_match_boxes_pairs_overlapping_boxes_one_to_one():
    previous = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    boxes = np.array([[21.0, 0.0, 31.0, 10.0], [1.0, 0.0, 11.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    np.testing.assert_array_equal(match_boxes(boxes, previous), [1, 0, -1])
    # two boxes on one previous box: the better overlap takes it, the other stays unmatched
    twins = np.array([[3.0, 0.0, 13.0, 10.0], [1.0, 0.0, 11.0, 10.0]])
    np.testing.assert_array_equal(match_boxes(twins, previous), [-1, 0])
    assert match_boxes(boxes, np.zeros((0, 4))).tolist() == [-1, -1, -1]


def test_hog_proposes_the_sample_people(sample):
    image, _, info = sample
    boxes, weights = HogPeopleDetector()(image)
    assert len(boxes) == info["num_people"]
    assert np.all(weights[:-1] >= weights[1:])  # best first


def test_finders_find_everyone_in_the_sample(sample):
    image, _, info = sample
    truth = [np.array(p["bbox_xyxy"]) for p in info["people"]]
    # hog+blazepose, then the mask-and-repeat scan alone, sharing its BlazePose
    finder = PersonFinder(detector="hog+blazepose")
    try:
        found_default = finder.find(image)
        scan = PersonFinder.__new__(PersonFinder)
        scan.__dict__.update(finder.__dict__, detector="blazepose", hog=None)
        found_scan = scan.find(image)
    finally:
        finder.close()
    for found in (found_default, found_scan):
        assert len(found) == info["num_people"]
        for box in truth:  # each true person matched by one landmark box
            assert max(box_iou(box, p.bbox_xyxy) for p in found) > 0.5


def test_finder_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        PersonFinder(detector="yolo")
    with pytest.raises(ValueError, match="max_people"):
        PersonFinder(max_people=0)
