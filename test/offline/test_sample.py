"""The bundled sample: cached render, intrinsics and ground truth are consistent."""

from __future__ import annotations

import numpy as np

from mahmr_ros.geometry import project
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


def test_render_other_people_stand_on_the_floor(anny_body):
    """``render_sample(people=...)``: any ages and places, with soles on the floor CAMERA_HEIGHT_M
    below."""
    from mahmr_ros.offline.sample import CAMERA_HEIGHT_M, ScenePerson, render_sample

    people = (ScenePerson(0.15, 0.0, 2.5, 0.0, (60, 150, 60), (120, 80, 50)),)
    image, info = render_sample(people=people, body=anny_body)
    assert image.shape == (SAMPLE_SIZE_WH[1], SAMPLE_SIZE_WH[0], 3)
    (truth,) = info["people"]
    assert truth["is_child"] and abs(truth["height_m"] - anny_body.height_m([0.15])[0]) < 0.01
    assert truth["pelvis_cam"][2] == 2.5
    # the lowest pixel of the body is where the floor CAMERA_HEIGHT_M below the camera is at ~2.5 m
    K = np.array(info["K"])
    v_feet = truth["bbox_xyxy"][3]
    assert abs(K[1, 1] * CAMERA_HEIGHT_M / (v_feet - K[1, 2]) - 2.5) < 0.25
