"""Splatted z-buffer: projection with skew and a brute-force per-pixel minimum as references."""

import numpy as np
import pytest

from mahmr_ros.dto.splat import project_points, splat_zbuffer

K = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 30.0], [0.0, 0.0, 1.0]])


def test_projection_matches_the_pinhole_matrix_product_with_skew():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, 1], [1, 1, 5], (50, 3)).astype(np.float32)
    K_skew = K.copy()
    K_skew[0, 1] = 3.0
    u, v, z = project_points(pts, K_skew)
    uvw = pts.astype(np.float64) @ K_skew.T
    np.testing.assert_allclose(u, uvw[:, 0] / uvw[:, 2], rtol=1e-5)
    np.testing.assert_allclose(v, uvw[:, 1] / uvw[:, 2], rtol=1e-5)
    np.testing.assert_array_equal(z, pts[:, 2])


def test_zbuffer_is_the_per_pixel_minimum_brute_force():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-0.5, -0.4, 1.5], [0.5, 0.4, 4.0], (400, 3)).astype(np.float32)
    pts = np.concatenate([pts, [[0, 0, -1.0], [50.0, 0, 1.0]]]).astype(
        np.float32
    )  # behind / outside
    scale = 0.5
    zbuf, lin, (h, w) = splat_zbuffer(pts, K, (60, 80), scale)
    assert (h, w) == (30, 40) and lin[-2] == -1 and lin[-1] == -1
    want = np.full((h, w), np.inf, np.float32)
    for x, y, z in pts:
        if z <= 1e-3:
            continue
        # Pixel centres on integers at both resolutions: u_r = r (u + 0.5) - 0.5, rounded.
        col = int(np.rint(scale * (K[0, 0] * x / z + K[0, 2]) + 0.5 * scale - 0.5))
        row = int(np.rint(scale * (K[1, 1] * y / z + K[1, 2]) + 0.5 * scale - 0.5))
        if 0 <= col < w and 0 <= row < h:
            want[row, col] = min(want[row, col], z)
    np.testing.assert_array_equal(zbuf.reshape(h, w), want)
    inside = lin >= 0
    assert np.all(
        zbuf[lin[inside]] <= pts[inside, 2]
    )  # every point is at or behind its pixel's surface


def test_project_points_is_a_deprecated_view_of_geometry_project():
    from mahmr_ros.geometry import project

    pts = np.array([[0.5, -0.2, 2.0], [0.0, 0.0, 0.0]], np.float32)
    with pytest.warns(DeprecationWarning, match="mahmr_ros.geometry.project"):
        u, v, z = project_points(pts, K)
    np.testing.assert_array_equal(np.stack([u, v], -1), project(pts, K, min_depth_m=1e-6))
    np.testing.assert_array_equal(z, pts[:, 2])
