"""``project``: hand-picked points, the K-matrix product as reference, camera batches, dtypes,
errors."""

import numpy as np
import pytest
import torch

from mahmr_ros.geometry import project, unproject

K = np.array([[100.0, 0.0, 50.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])


def test_hand_picked_points():
    # (0.5, -0.2, 2): x/z = 0.25 -> u = 100 * 0.25 + 50 = 75; y/z = -0.1 -> v = 200 * -0.1 + 40
    # = 20.
    np.testing.assert_allclose(project([0.5, -0.2, 2.0], K), [75.0, 20.0])
    # On the optical axis: the principal point, at any depth.
    np.testing.assert_allclose(project([[0, 0, 1.0], [0, 0, 7.0]], K), [[50, 40], [50, 40]])
    skew = K.copy()
    skew[0, 1] = 3.0  # u gains skew * y/z = 3 * -0.1
    np.testing.assert_allclose(project([0.5, -0.2, 2.0], skew), [74.7, 20.0])


def test_matches_the_matrix_product_numpy_and_torch():
    pts = np.random.default_rng(0).uniform([-2, -2, 0.5], [2, 2, 9], (5, 40, 3))
    K_skew = K.copy()
    K_skew[0, 1] = -2.0
    uvw = pts @ K_skew.T
    want = uvw[..., :2] / uvw[..., 2:]
    np.testing.assert_allclose(project(pts, K_skew), want, rtol=1e-12)
    ours = project(torch.from_numpy(pts), torch.from_numpy(K_skew))
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), want, rtol=1e-12)


def test_one_camera_per_batch_entry():
    K2 = np.stack(
        [K, K * [[2.0], [0.5], [1.0]]]
    )  # (2, 3, 3): second camera with other focal/centre
    pts = np.random.default_rng(1).uniform([-1, -1, 1], [1, 1, 4], (2, 6, 5, 3))
    ours = project(pts, K2)
    assert ours.shape == (2, 6, 5, 2)
    for b in range(2):
        np.testing.assert_allclose(ours[b], project(pts[b], K2[b]), rtol=1e-12)
    ours_t = project(torch.from_numpy(pts).float(), torch.from_numpy(K2).float())
    np.testing.assert_allclose(ours_t.numpy(), ours, rtol=1e-5)


def test_precision_follows_the_points():
    pts32 = np.array([[0.5, -0.2, 2.0]], np.float32)
    assert project(pts32, K).dtype == np.float32  # K is cast to the points' dtype
    assert project(pts32.astype(np.float64), K.astype(np.float32)).dtype == np.float64
    assert project(np.array([[1, 2, 4]]), K).dtype == np.float64  # integers become float64
    assert (
        project(torch.tensor([[0.5, -0.2, 2.0]]), K).dtype == torch.float32
    )  # numpy K, tensor points


def test_min_depth_keeps_points_at_the_camera_finite():
    pts = np.array([[0.1, 0.1, 0.0], [0.1, 0.1, -1.0], [0.1, 0.1, 2.0]])
    uv = project(pts, K, min_depth_m=1e-3)
    np.testing.assert_allclose(uv[0], [100 * 100 + 50, 200 * 100 + 40])  # z clamped to 1 mm
    np.testing.assert_allclose(uv[1], uv[0])
    np.testing.assert_allclose(uv[2], [55.0, 50.0])  # untouched above the clamp
    assert torch.isfinite(project(torch.zeros(4, 3), K, min_depth_m=1e-6)).all()


def test_bad_shapes_are_clear_errors():
    with pytest.raises(
        ValueError, match=r"K \(3, 3\) or \(\*B, 3, 3\), got points \(4, 3\) and K \(4, 4\)"
    ):
        project(np.ones((4, 3)), np.eye(4))
    with pytest.raises(ValueError, match=r"got points \(4, 2\)"):
        project(np.ones((4, 2)), K)
    with pytest.raises(ValueError, match="K"):
        project(
            np.ones((2, 3)), np.stack([K] * 2)[None]
        )  # (1, 2, 3, 3) K: more batch dims than points


def test_unproject_hand_picked_and_inverts_project():
    # Pixel (75, 20) at depth 2 is the hand-picked point above; the principal point is the optical
    # axis.
    np.testing.assert_allclose(unproject([75.0, 20.0], K, depth_m=2.0), [0.5, -0.2, 2.0])
    np.testing.assert_allclose(
        unproject([[50.0, 40.0]], K), [[0.0, 0.0, 1.0]]
    )  # default: ray at z = 1
    K_skew = K.copy()
    K_skew[0, 1] = 4.0
    pts = np.random.default_rng(2).uniform([-2, -2, 0.5], [2, 2, 9], (3, 10, 3))
    back = unproject(project(pts, K_skew), K_skew, depth_m=pts[..., 2])
    np.testing.assert_allclose(back, pts, rtol=1e-12)
    pts_t = torch.from_numpy(pts)
    back_t = unproject(project(pts_t, K_skew), K_skew, depth_m=pts_t[..., 2])
    assert isinstance(back_t, torch.Tensor)
    np.testing.assert_allclose(back_t.numpy(), pts, rtol=1e-12)
    with pytest.raises(ValueError, match=r"unproject needs pixels \(\*B, \.\.\., 2\)"):
        unproject(np.ones((4, 3)), K)
