"""GT boxes and the SAT scale map (spec §4.5-4.6) on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from training.data.scale_map import (
    gt_boxes,
    map_size,
    scale_map,
    subdivide_vertices,
    visible_joints,
)


def test_gt_box_is_the_enlarged_joint_extent_normalised_by_input_size():
    joints = np.array([[[100, 200], [300, 400.0]]])
    box = gt_boxes(joints, resized_hw=(1000, 1288), input_size=1288)[0]
    np.testing.assert_allclose(box * 1288, [200, 300, 240, 240], rtol=1e-6)


def test_gt_box_merges_the_dataset_box_and_clamps_to_the_image():
    joints = np.array([[[10, 10], [20, 20.0]]])
    box = gt_boxes(joints, (100, 100), input_size=100, boxes_xyxy_px=np.array([[0, 0, 99, 99.0]]))[
        0
    ]
    lo, hi = box[:2] - box[2:] / 2, box[:2] + box[2:] / 2
    np.testing.assert_allclose(lo, [1e-6, 1e-6], atol=1e-7)
    np.testing.assert_allclose(hi, [0.99, 0.99], atol=1e-6)


def test_visible_joints():
    joints = np.array([[[-1, 5], [5, 5], [5, 10]]], float)
    np.testing.assert_array_equal(visible_joints(joints, (10, 10)), [[False, True, False]])


def test_map_size_rounds_up_to_even():
    assert map_size((728, 1288)) == (26, 46)
    assert map_size((700, 1288)) == (26, 46)
    assert map_size((29, 56)) == (2, 2)


def test_nearer_people_overwrite_farther_ones():
    far = np.array([[10.0, 10.0], [40.0, 10.0]])  # cells (0,0) and (0,1)
    near = np.array([[45.0, 12.0]])  # cell (0,1)
    verts = [far, np.concatenate([near, near])]
    boxes = np.array([[0.5, 0.5, 0.3, 0.4], [0.5, 0.5, 0.6, 0.8]])
    out = scale_map(np.stack(verts), boxes, depth_order=np.array([5.0, 2.0]), resized_hw=(56, 112))
    assert out.shape == (2, 4, 2)
    assert tuple(out[0, 0]) == pytest.approx((1.0, 0.5))
    assert tuple(out[0, 1]) == pytest.approx((1.0, 1.0))  # |(0.6, 0.8)| = 1
    assert out[1].sum() == 0


def test_subdivision_matches_trimesh():
    mesh = trimesh.creation.box()
    ours = subdivide_vertices(np.asarray(mesh.vertices), mesh.faces)
    theirs, _ = trimesh.remesh.subdivide(mesh.vertices, mesh.faces)
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(
        np.unique(ours.round(9), axis=0), np.unique(theirs.round(9), axis=0)
    )
