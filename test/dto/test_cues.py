"""Cue statistics on known planes: ownership, IQR, row-demeaned fit, bottom variant, removal rules,
guards."""

import numpy as np
import pytest

from mahmr_ros.dto.cues import Cues, check_depth_map, extract_cues

K = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])
HW = (120, 160)


def grid(n: int, half_w: float, half_h: float, z0: float, x0: float = 0.0, tilt: float = 0.0):
    """(n*n, 3) vertices of a plane z = z0 + tilt (x - x0) and its (2 (n-1)^2, 3) faces."""
    xs, ys = np.meshgrid(np.linspace(-half_w, half_w, n), np.linspace(-half_h, half_h, n))
    verts = np.stack([xs.ravel() + x0, ys.ravel(), z0 + tilt * xs.ravel()], 1)
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            faces += [(a, b, e), (a, e, d)]
    return verts.astype(np.float32), np.array(faces)


def plane_depth(z0: float, tilt: float = 0.0, x0: float = 0.0) -> np.ndarray:
    """Ray-cast depth of the plane z = z0 + tilt (x - x0) at every pixel of HW."""
    v, u = np.mgrid[0 : HW[0], 0 : HW[1]].astype(np.float64)
    rx = (u - K[0, 2]) / K[0, 0]
    # z = z0 + tilt (z rx - x0)  ->  z (1 - tilt rx) = z0 - tilt x0
    return ((z0 - tilt * x0) / (1 - tilt * rx)).astype(np.float32)


def test_fronto_parallel_plane_gives_exact_means_and_no_slope():
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    depth = plane_depth(3.3)  # the true plane is 10 % farther than the estimate
    cues = extract_cues(verts[None], K, depth, faces=faces, max_side=None)
    assert cues.removed == [None]
    assert cues.d[0] == pytest.approx(3.3, abs=1e-5)
    assert cues.z[0] == pytest.approx(3.0, abs=1e-5)
    assert cues.depth_std[0] == pytest.approx(0.0, abs=1e-5)
    assert cues.d_bot[0] == pytest.approx(3.3, abs=1e-5) and cues.z_bot[0] == pytest.approx(
        3.0, abs=1e-5
    )
    # Constant rows: the row-demeaned fit is degenerate (spec §11.12) and must give 0, not NaN.
    assert cues.slope[0] == 0.0 and cues.corr[0] == 0.0
    # Projected footprint: 0.8 m x 1.0 m at 3 m with f = 200 -> ~54 x 67 px, all owned.
    assert 3300 < cues.n_pixels[0] < 3900 and cues.n_inliers[0] == cues.n_pixels[0]
    assert 800 <= cues.n_visible[0] <= 900  # border vertices may round onto an uncovered pixel


def test_tilted_plane_slope_is_depth_ratio_and_corr_one():
    verts, faces = grid(30, 0.5, 0.5, 3.0, tilt=0.5)
    depth = 2.0 * plane_depth(3.0, tilt=0.5)  # cue = 2 x rendered depth: z~ = 0.5 d~
    cues = extract_cues(verts[None], K, depth, faces=faces, max_side=None)
    assert cues.slope[0] == pytest.approx(0.5, rel=1e-3)
    assert cues.corr[0] == pytest.approx(1.0, abs=1e-4)
    assert cues.d[0] == pytest.approx(2.0 * cues.z[0], rel=1e-4)
    assert cues.depth_std[0] > 0.1


def test_bottom_variant_uses_the_lowest_rows():
    # Plane tilted in y (z grows downwards in the image): the bottom rows are farther than the
    # mean.
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    verts[:, 2] += 0.4 * verts[:, 1]
    v = np.mgrid[0 : HW[0], 0 : HW[1]][0].astype(np.float64)
    ry = (v - K[1, 2]) / K[1, 1]
    depth = (3.0 / (1 - 0.4 * ry)).astype(np.float32)
    cues = extract_cues(verts[None], K, depth, faces=faces, max_side=None)
    assert cues.z_bot[0] > cues.z[0] + 0.1
    assert cues.d_bot[0] == pytest.approx(cues.z_bot[0], rel=1e-3)


def test_iqr_drops_background_pixels_and_invalid_pixels_are_skipped():
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    depth = plane_depth(3.0)
    rng = np.random.default_rng(0)
    bad = rng.random(HW) < 0.05
    depth[bad] = 30.0  # flying pixels / background leaking into the person
    holes = rng.random(HW) < 0.1
    depth[holes] = np.nan  # invalid RGB-D pixels
    depth[rng.random(HW) < 0.05] = 0.0
    cues = extract_cues(verts[None], K, depth, faces=faces, max_side=None)
    assert cues.d[0] == pytest.approx(3.0, abs=1e-5)
    clean = extract_cues(verts[None], K, plane_depth(3.0), faces=faces, max_side=None)
    assert cues.n_pixels[0] < 0.9 * clean.n_pixels[0]  # NaN and 0 pixels never enter


def test_occlusion_and_masks_decide_ownership():
    front, faces = grid(20, 0.3, 0.5, 2.0, x0=-0.1)
    back, _ = grid(20, 0.3, 0.5, 4.0, x0=0.2)
    depth = plane_depth(4.0)
    cues = extract_cues(np.stack([front, back]), K, depth, faces=faces, max_side=None)
    assert cues.n_pixels[0] > cues.n_pixels[1] > 0
    assert cues.z[0] == pytest.approx(2.0, abs=1e-4) and cues.z[1] == pytest.approx(4.0, abs=1e-4)
    assert cues.n_visible[1] < 400  # half hidden behind the front plane
    # With masks, a mesh may only own pixels of its own mask: an empty front mask gives all to the
    # back one.
    masks = np.zeros((2,) + HW, bool)
    masks[1] = True
    gated = extract_cues(
        np.stack([front, back]), K, depth, faces=faces, masks=masks, max_side=None
    )
    assert gated.removed[0] == "area" and gated.n_pixels[0] == 0
    assert gated.n_pixels[1] > cues.n_pixels[1]


def test_removal_rules_and_splat_path():
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    far, _ = grid(30, 0.03, 0.03, 10.0)  # ~1 px: too small
    cues = extract_cues(np.stack([verts, far]), K, plane_depth(3.0), faces=faces, max_side=None)
    assert cues.removed == [None, "area"]
    assert np.isnan(cues.d[1]) and list(cues.valid) == [True, False]
    # Without faces the vertices are splatted (any mesh): same statistics on a dense plane.
    splat = extract_cues(verts[None], K, plane_depth(3.3), max_side=None)
    assert splat.removed == [None] and splat.d[0] == pytest.approx(3.3, abs=1e-4)
    assert splat.z[0] == pytest.approx(3.0, abs=1e-4)
    # Too few visible vertices (min_visible_fraction) removes the person.
    strict = extract_cues(
        verts[None], K, plane_depth(3.0), faces=faces, max_side=None, min_visible_fraction=1.1
    )
    assert strict.removed == ["visible"]


def test_one_pixel_per_row_is_a_guarded_degenerate_fit():
    # A thin vertical sliver: every row has one pixel, so row-demeaning leaves all zeros (spec
    # §11.12).
    verts, faces = grid(10, 0.006, 0.5, 3.0, x0=0.0075)  # covers pixel column 80 only
    cues = extract_cues(
        verts[None], K, plane_depth(3.0), faces=faces, max_side=None, min_area_fraction=1e-4
    )
    assert cues.removed == [None]
    assert cues.slope[0] == 0.0 and cues.corr[0] == 0.0 and np.isfinite(cues.d[0])


def test_reduced_resolution_keeps_statistics():
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    cues = extract_cues(verts[None], K, plane_depth(3.3), faces=faces, max_side=80)
    assert cues.render_hw == (60, 80) and cues.scale == 0.5
    assert cues.d[0] == pytest.approx(3.3, abs=1e-4)


def test_erosion_shrinks_the_region():
    verts, faces = grid(30, 0.4, 0.5, 3.0)
    full = extract_cues(verts[None], K, plane_depth(3.0), faces=faces, max_side=None)
    eroded = extract_cues(verts[None], K, plane_depth(3.0), faces=faces, max_side=None, erode_px=2)
    assert eroded.n_pixels[0] < full.n_pixels[0] - 100


def test_bad_inputs_raise_clear_errors():
    verts, faces = grid(10, 0.4, 0.5, 3.0)
    with pytest.raises(ValueError, match="depth must be an"):
        extract_cues(verts[None], K, np.zeros((2, 3, 4)), faces=faces)
    blank = extract_cues(
        verts[None], K, np.full(HW, np.nan), faces=faces
    )  # legitimate frame, no cue
    assert blank.removed == ["depth"] and np.isnan(blank.d[0])
    with pytest.raises(ValueError, match="numeric"):
        extract_cues(verts[None], K, np.full(HW, "x"), faces=faces)
    with pytest.raises(ValueError, match="masks must be"):
        extract_cues(
            verts[None], K, plane_depth(3.0), faces=faces, masks=np.ones((1, 10, 10), bool)
        )
    nan_verts = verts.copy()
    nan_verts[3] = np.nan
    with pytest.raises(ValueError, match=r"non-finite vertices for people \[0\]"):
        extract_cues(nan_verts[None], K, plane_depth(3.0), faces=faces)
    with pytest.raises(ValueError, match="vertices must be"):
        extract_cues(verts, K, plane_depth(3.0), faces=faces)
    assert extract_cues(np.zeros((0, 5, 3)), K, plane_depth(3.0)).d.shape == (0,)
    assert (
        isinstance(Cues.empty(2), Cues)
        and check_depth_map(plane_depth(3.0)[..., None]).shape == HW
    )


def test_empty_inlier_set_removes_the_person():
    """Spec §11.12: no pixel within 0.10 m of the row fit (cue uncorrelated with the rendered
    depth)."""
    import torch

    from mahmr_ros.dto.cues import _person_stats

    out = Cues.empty(1)
    d = torch.tensor([1.0, 2.0, 1.0, 2.0], dtype=torch.float64)
    z = torch.tensor(
        [3.0, 4.0, 4.0, 3.0], dtype=torch.float64
    )  # z~ = +-0.5 m, uncorrelated with d~
    _person_stats(out, 0, d, z, torch.zeros(4, dtype=torch.long), 1, 1, 1.5, 0.10, 0.9)
    assert out.removed == ["inliers"] and np.isnan(out.d[0])
