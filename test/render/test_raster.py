"""Z-buffer tests on meshes with hand-computable images (square, tetrahedron, two overlapping
quads)."""

import numpy as np
import pytest
import torch

from mahmr_ros.render import rasterize_meshes, scale_intrinsics, splat_points, visible_vertices

K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
HW = (480, 640)
QUAD_FACES = np.array([[0, 1, 2], [0, 2, 3]])


def quad(half_m: float, z_m: float, cx_m: float = 0.0) -> np.ndarray:
    return np.array(
        [
            [cx_m - half_m, -half_m, z_m],
            [cx_m + half_m, -half_m, z_m],
            [cx_m + half_m, half_m, z_m],
            [cx_m - half_m, half_m, z_m],
        ],
        np.float32,
    )


def test_square_covers_exact_pixel_range_and_depth():
    raster = rasterize_meshes(quad(0.5, 2.0), QUAD_FACES, K, HW)
    rows, cols = np.nonzero(raster.covered.numpy())
    # Corners project to 320 +- 500 * 0.5 / 2 = 195 .. 445 (pixel centres on integers, edges
    # inclusive).
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (195, 445, 115, 365)
    assert len(rows) == 251 * 251
    assert torch.allclose(raster.depth_m[raster.covered], torch.tensor(2.0))
    assert torch.isinf(raster.depth_m[~raster.covered]).all()


def test_tilted_plane_depth_is_perspective_correct():
    # Plane z = 2 + 0.5 x through a quad; the rendered depth at every pixel must lie on that plane.
    v = quad(0.5, 2.0)
    v[:, 2] += 0.5 * v[:, 0]
    raster = rasterize_meshes(v, QUAD_FACES, K, HW)
    rows, cols = np.nonzero(raster.covered.numpy())
    depth = raster.depth_m.numpy()[rows, cols]
    # Ray through pixel: x = z (u - cx) / fx; plane: z = 2 + 0.5 z (u - cx) / fx.
    expected = 2.0 / (1.0 - 0.5 * (cols - 320) / 500.0)
    np.testing.assert_allclose(depth, expected, rtol=1e-5)


def test_nearest_mesh_wins_and_ids_are_per_mesh():
    far, near = quad(0.5, 4.0), quad(0.2, 2.0, cx_m=0.1)
    raster = rasterize_meshes(np.stack([far, near]), QUAD_FACES, K, HW)
    pid = raster.person_id.numpy()
    assert pid[240, 345] == 1 and raster.depth_m[240, 345] == pytest.approx(
        2.0
    )  # inside both: near wins
    assert pid[240, 290] == 0 and raster.depth_m[240, 290] == pytest.approx(4.0)  # far only
    assert pid[10, 10] == -1
    assert set(np.unique(raster.prim_id.numpy())) == {-1, 0, 1}


def test_tetrahedron_front_faces_hide_back_vertex():
    # Apex pointing at the camera; the base vertices sit at the silhouette, the hidden one is
    # behind.
    verts = np.array(
        [[0, 0, 2.0], [-0.3, -0.3, 2.5], [0.3, -0.3, 2.5], [0.0, 0.4, 2.5], [0, 0, 2.45]],
        np.float32,
    )
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    raster = rasterize_meshes(verts[:4], faces, K, HW)
    vis = visible_vertices(verts, raster).numpy()
    assert vis[0] and raster.depth_m[240, 320] == pytest.approx(2.0, abs=1e-4)
    assert not vis[4]  # the point inside the tetrahedron is behind the front faces


def test_reduced_resolution_matches_scaled_intrinsics():
    raster = rasterize_meshes(quad(0.5, 2.0), QUAD_FACES, K, HW, max_side=160)
    assert raster.hw == (120, 160) and raster.scale == pytest.approx(0.25)
    np.testing.assert_allclose(raster.K, scale_intrinsics(K, 0.25))
    # The covered area scales with r^2 (up to the boundary pixels).
    assert abs(int(raster.covered.sum()) - 251 * 251 / 16) < 2 * 63


def test_masks_gate_ownership():
    far, near = quad(0.5, 4.0), quad(0.2, 2.0)
    masks = np.zeros((2,) + HW, bool)
    masks[0] = (
        True  # the near mesh has an empty instance mask: the far one owns the pixels behind it
    )
    raster = rasterize_meshes(np.stack([far, near]), QUAD_FACES, K, HW, masks=masks)
    assert raster.person_id[240, 320] == 0 and raster.depth_m[240, 320] == pytest.approx(4.0)


def test_points_splat_nearest_point_wins():
    pts = np.array([[0, 0, 3.0], [0, 0, 2.0], [0.2, 0, 2.0]], np.float32)
    raster = splat_points(pts, K, HW, owner_id=[0, 1, 1])
    assert raster.person_id[240, 320] == 1 and raster.prim_id[240, 320] == 1
    assert raster.depth_m[240, 320] == pytest.approx(2.0)
    assert raster.person_id[240, 370] == 1 and int(raster.covered.sum()) == 2
    wide = splat_points(pts, K, HW, radius_px=1)
    assert int(wide.covered.sum()) == 18


def test_behind_camera_and_bad_inputs():
    raster = rasterize_meshes(quad(0.5, -2.0), QUAD_FACES, K, HW)
    assert not raster.covered.any()
    with pytest.raises(ValueError, match="faces index vertex"):
        rasterize_meshes(quad(0.5, 2.0), np.array([[0, 1, 7]]), K, HW)
    with pytest.raises(ValueError, match="fx, fy > 0"):
        rasterize_meshes(quad(0.5, 2.0), QUAD_FACES, np.zeros((3, 3)), HW)
    with pytest.raises(ValueError, match="masks"):
        rasterize_meshes(quad(0.5, 2.0), QUAD_FACES, K, HW, masks=np.ones((2, 4, 4), bool))
