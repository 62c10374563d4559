"""DTO-Lite cues on hand-built planes: exact cue means, IQR trimming, removal reasons."""

import numpy as np
import pytest

from mahmr_ros.dto.lite_config import LiteConfig
from mahmr_ros.dto.lite_cues import _iqr_keep, lite_cues, sample_stride

K = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 30.0], [0.0, 0.0, 1.0]])
HW = (60, 80)


def plane(z_m: float, half_w_m: float, half_h_m: float, n: int = 30) -> np.ndarray:
    """(n*n, 3) float32 fronto-parallel grid of points at depth z_m."""
    x, y = np.meshgrid(np.linspace(-half_w_m, half_w_m, n), np.linspace(-half_h_m, half_h_m, n))
    return np.stack([x.ravel(), y.ravel(), np.full(n * n, z_m)], 1).astype(np.float32)


def test_cue_is_the_mean_measured_and_rendered_depth():
    verts = plane(3.0, 0.3, 0.2)[None]
    depth = np.full(HW, 2.7, np.float32)
    cues = lite_cues(verts, K, depth, "metric")
    assert cues.removed == [None]
    assert cues.d[0] == pytest.approx(2.7, abs=1e-6) and cues.z[0] == pytest.approx(3.0, abs=1e-6)
    assert cues.sem[0] == pytest.approx(0.0, abs=1e-6) and cues.n_visible[0] == 900


def test_outlier_pixels_are_trimmed_and_millimetres_read_as_metres():
    verts = plane(3.0, 0.3, 0.2)[None]
    depth_mm = np.full(HW, 2700, np.uint16)
    depth_mm[28:32, 38:42] = (
        9000  # a patch of far background (flying pixels) inside the silhouette
    )
    cues = lite_cues(verts, K, depth_mm, "metric")
    assert cues.d[0] == pytest.approx(2.7, abs=1e-6)  # IQR fences drop the 9 m samples
    assert cues.n_valid[0] < 900


def test_occluded_and_invalid_people_are_removed_with_the_reason():
    back = plane(3.0, 0.3, 0.2)
    front = plane(2.0, 0.3, 0.2)  # covers the same pixels, 1 m closer
    cues = lite_cues(np.stack([back, front]), K, np.full(HW, 2.0, np.float32), "metric")
    assert cues.removed == ["visible", None] and np.isnan(cues.d[0]) and cues.n_visible[0] == 0
    blank = lite_cues(front[None], K, np.full(HW, np.nan, np.float32), "metric")
    assert blank.removed == ["samples"]


def test_masks_gate_samples_and_disparity_is_inverted():
    verts = plane(3.0, 0.3, 0.2)[None]
    mask = np.zeros((1, *HW), bool)
    mask[0, :, :40] = True  # the left half of the image only
    disparity = np.full(HW, 1 / 2.5, np.float32)
    cues = lite_cues(verts, K, disparity, "disparity", masks=mask, cfg=LiteConfig(erode_px=0))
    assert cues.d[0] == pytest.approx(2.5, rel=1e-6)
    full = lite_cues(verts, K, disparity, "disparity", cfg=LiteConfig(erode_px=0))
    assert 0.4 * full.n_valid[0] < cues.n_valid[0] < 0.6 * full.n_valid[0]


def test_iqr_quartiles_by_index_hand_worked():
    D = np.array([[1.0, 2.0, 3.0, 4.0, 100.0, np.nan]])
    # n = 5 finite: q1 = sorted[1] = 2, q3 = sorted[3] = 4, fences [max(2 - 3, 0), 4 + 3] = [0, 7].
    np.testing.assert_array_equal(_iqr_keep(D, 1.5), [[True, True, True, True, False, False]])


def test_sample_stride_gives_about_the_requested_samples():
    assert (
        sample_stride(6890, 1000) == 6
        and sample_stride(500, 1000) == 1
        and sample_stride(10, 0) == 10
    )
