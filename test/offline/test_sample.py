"""The bundled sample: cached render, intrinsics and ground truth are consistent."""

from __future__ import annotations

import numpy as np

from mahmr_ros.offline.place import project
from mahmr_ros.offline.sample import SAMPLE_PEOPLE, SAMPLE_SIZE_WH, sample_path


def test_load_sample(sample):
    image, K, info = sample
    assert image.shape == (SAMPLE_SIZE_WH[1], SAMPLE_SIZE_WH[0], 3) and image.dtype == np.uint8
    assert sample_path().is_file()
    assert "Anny" in info["source"] and "CC0" in info["source"]
    assert info["num_people"] == SAMPLE_PEOPLE == len(info["people"])
    heights = sorted(p["height_m"] for p in info["people"])
    assert heights[0] < 1.4 < heights[1]  # one child, two adults
    for person in info["people"]:
        u, v = project(np.array(person["pelvis_cam"]), K)
        x0, y0, x1, y1 = person["bbox_xyxy"]
        assert x0 < u < x1 and y0 < v < y1  # the pelvis projects inside the person's box
        patch = image[int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3].astype(int)
        assert patch.std() < 60  # on the body, not on an edge: the render agrees with the truth
