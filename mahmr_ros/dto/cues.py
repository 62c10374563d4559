"""Per-person depth cues for DTO: pixel ownership by z-buffer, then robust statistics (spec dto
§3.1-3.2).

All people's initial meshes are rendered into one composite z-buffer at reduced resolution (longer
side <= ``max_side``, spec §3.1) with the package rasterizer (``mahmr_ros.render``; triangles when
faces are known, a vertex splat otherwise), gated by the instance masks when given. A pixel belongs
to the nearest person whose own mesh AND own mask cover it. For each person, over their owned
pixels with a valid depth sample:

1. IQR filter on the depth cue d (strict, lower fence clipped at 0);
2. row-demeaned line fit z~ = a d~ + c (rendered depth against the cue, after subtracting per-row
   means; the slope ``a`` and Pearson ``corr`` bound alpha from below), inliers |a d~ + c - z~| <=
   0.10 m;
3. means over the inliers: d_i (cue), z_i (rendered surface depth, m), population std of d, and the
   "bottom" variant over the inlier rows >= the 90th percentile of the person's rows (around the
   feet).

Differences from the reference, on purpose: statistics are taken at the render resolution (the
depth map is sampled nearest at the rendered pixel centres) instead of upsampling the ownership map
to full resolution; pixels without a valid depth sample (NaN, inf, <= 0: invalid RGB-D pixels, IR
shadows) are excluded before anything else; ownership can be eroded by ``erode_px`` to drop flying
pixels at silhouettes; a person whose statistics degenerate (empty inlier set, spec §11 item 12) is
removed with a reason instead of yielding NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mahmr_ros.render import rasterize_meshes, splat_points, visible_vertices

MIN_AREA_FRACTION = 1.0 / 400.0  # of the image (spec §3.2: H W / 400 pixels)
MIN_VISIBLE_FRACTION = 500.0 / 6890.0  # of the vertices (spec §3.2: 500 of SMPL's 6890)
IQR_FACTOR = 1.5
INLIER_M = 0.10
BOTTOM_QUANTILE = 0.9
VISIBILITY_TOL_M = 0.01
MIN_VALID_PIXELS = 10  # fewer owned pixels with a valid depth than this: no usable cue
SPLAT_VISIBILITY_TOL_M = 0.05  # spec dto §10.3 step 2: 1-5 cm for a vertex splat


@dataclass
class Cues:
    """Cue statistics of P people (index order of the input meshes).

    Attributes:
        d: (P,) float64 mean depth cue over the inlier pixels (the depth map's unit: m or
            relative), NaN if removed.
        z: (P,) float64 mean rendered surface depth of the initial mesh over the same pixels,
            metres.
        depth_std: (P,) float64 population std of the cue over the inliers.
        slope: (P,) float64 slope of the row-demeaned fit (m per cue unit), 0 when degenerate.
        corr: (P,) float64 Pearson correlation of that fit, 0 when degenerate.
        d_bot, z_bot: (P,) float64 bottom-variant means (rows >= 90th percentile).
        n_pixels: (P,) int owned pixels with a valid depth (render resolution).
        n_inliers: (P,) int pixels the means are taken over.
        n_visible: (P,) int visible vertices.
        removed: P entries, None or the reason the person cannot be refined ("area", "visible",
            "depth", "iqr", "inliers").
        render_hw: (h, w) of the render.
        scale: render resolution / image resolution.
    """

    d: np.ndarray
    z: np.ndarray
    depth_std: np.ndarray
    slope: np.ndarray
    corr: np.ndarray
    d_bot: np.ndarray
    z_bot: np.ndarray
    n_pixels: np.ndarray
    n_inliers: np.ndarray
    n_visible: np.ndarray
    removed: list = field(default_factory=list)
    render_hw: tuple[int, int] = (0, 0)
    scale: float = 1.0

    @property
    def valid(self) -> np.ndarray:
        """(P,) bool, people with usable cues."""
        return np.array([r is None for r in self.removed], bool)

    @classmethod
    def empty(cls, P: int, hw=(0, 0), scale: float = 1.0) -> Cues:
        nan = np.full(P, np.nan)
        zero = np.zeros(P, np.int64)
        return cls(nan, nan.copy(), nan.copy(), np.zeros(P), np.zeros(P), nan.copy(), nan.copy(),
                   zero, zero.copy(), zero.copy(), [None] * P, hw, scale)  # fmt: skip


def check_depth_map(depth, name: str = "depth") -> np.ndarray:
    """(H, W) float32 copy of a depth/cue map; invalid pixels (NaN, inf, <= 0) stay as they are.

    A map without a single valid pixel is accepted (a blank or out-of-range RGB-D frame is a
    legitimate frame): ``extract_cues`` then removes everyone with reason "depth".

    Raises:
        ValueError: not 2-D, empty or not numeric.
    """
    arr = np.asarray(depth.detach().cpu() if isinstance(depth, torch.Tensor) else depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"[dto.cues] {name} must be an (H, W) map, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"[dto.cues] {name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32)


def _sample_nearest(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Nearest resample of an (H, W, ...) map to (h, w, ...): the original pixel under each pixel
    centre."""
    H, W = image.shape[:2]
    h, w = hw
    if (H, W) == (h, w):
        return image
    ys = ((torch.arange(h, device=image.device) + 0.5) * (H / h)).long().clamp_(max=H - 1)
    xs = ((torch.arange(w, device=image.device) + 0.5) * (W / w)).long().clamp_(max=W - 1)
    return image[ys][:, xs]


def _erode_ids(ids: torch.Tensor, px: int) -> torch.Tensor:
    """Ownership map where pixels within ``px`` (4-neighbourhood steps) of another owner become
    -1."""
    out = ids.clone()
    cur = ids
    for _ in range(px):
        pad = torch.nn.functional.pad(cur[None, None].float(), (1, 1, 1, 1), value=-2.0)[
            0, 0
        ].long()
        same = (
            (pad[:-2, 1:-1] == cur)
            & (pad[2:, 1:-1] == cur)
            & (pad[1:-1, :-2] == cur)
            & (pad[1:-1, 2:] == cur)
        )
        cur = torch.where(same, cur, torch.full_like(cur, -1))
    out[cur < 0] = -1
    return out


def extract_cues(
    vertices,
    K,
    depth,
    *,
    faces=None,
    masks=None,
    max_side: int | None = 512,
    vis_tol_m: float = VISIBILITY_TOL_M,
    min_area_fraction: float = MIN_AREA_FRACTION,
    min_visible_fraction: float = MIN_VISIBLE_FRACTION,
    iqr_factor: float = IQR_FACTOR,
    inlier_m: float = INLIER_M,
    bottom_quantile: float = BOTTOM_QUANTILE,
    erode_px: int = 0,
    device: str | torch.device | None = None,
) -> Cues:
    """Cue statistics of every person against a depth (or relative-depth) map.

    Args:
        vertices: (P, V, 3) float, metres, camera frame (the initial estimates), or a list of (V,
            3).
        K: (3, 3) intrinsics of the depth map's image, pixels.
        depth: (H, W) map registered to the image: metric depth (m) or the relative cue d =
            1/disparity. NaN, inf and values <= 0 are invalid pixels.
        faces: (F, 3) mesh faces shared by all people; None = splat the vertices one pixel each
            (any mesh, no topology; the visibility tolerance is then at least 5 cm).
        masks: optional (P, H, W) bool instance masks (ownership also needs the person's own mask).
        max_side: render resolution bound, pixels (spec: 512); None = full resolution.
        vis_tol_m: vertex visibility tolerance, metres (spec: 0.01).
        min_area_fraction: owned pixels below this fraction of the render -> removed ("area");
            after the IQR filter the same fraction of the pixels with a valid depth must remain
            ("iqr").
        min_visible_fraction: visible vertices below this fraction of V -> removed ("visible").
        iqr_factor: IQR fence factor (1.5).
        inlier_m: row-fit inlier threshold, metres (0.10).
        bottom_quantile: row quantile of the bottom variant (0.9).
        erode_px: erode each person's owned region by this many render pixels (RGB-D flying
            pixels).
        device: torch device (default: CPU, or the device of a tensor input).

    Returns:
        Cues for the P people.

    Raises:
        ValueError: bad shapes, non-finite vertices, masks that do not match the depth map.
    """
    dmap = check_depth_map(depth)
    H, W = dmap.shape
    if device is None:
        device = vertices.device if isinstance(vertices, torch.Tensor) else "cpu"
    if isinstance(vertices, (list, tuple)):
        vertices = (
            np.stack([np.asarray(v, np.float32) for v in vertices])
            if len(vertices)
            else np.zeros((0, 0, 3))
        )
    verts = torch.as_tensor(vertices, dtype=torch.float32, device=device)
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"[dto.cues] vertices must be (P, V, 3), got {tuple(verts.shape)}")
    P, V = verts.shape[:2]
    if P and not torch.isfinite(verts).all():
        bad = sorted(
            {int(i) for i in torch.nonzero(~torch.isfinite(verts).all(2).all(1)).flatten()}
        )
        raise ValueError(f"[dto.cues] non-finite vertices for people {bad}")
    if masks is not None:
        masks = np.asarray(masks.cpu() if isinstance(masks, torch.Tensor) else masks).astype(bool)
        if masks.shape != (P, H, W):
            raise ValueError(
                f"[dto.cues] masks must be (P={P}, H={H}, W={W}) like the depth map, got "
                f"{masks.shape}"
            )
    if P == 0:
        return Cues.empty(0)
    if not np.any(
        np.isfinite(dmap) & (dmap > 0)
    ):  # nothing to measure: everyone stays as estimated
        out = Cues.empty(P)
        out.removed = ["depth"] * P
        return out

    if faces is not None:
        raster = rasterize_meshes(
            verts, faces, K, (H, W), max_side=max_side, masks=masks, device=device
        )
    # no topology: a one-pixel vertex splat (DTO-Lite style), gated by the masks at each vertex's
    # pixel
    else:
        raster = splat_points(
            verts.reshape(-1, 3), K, (H, W), max_side=max_side, radius_px=0, device=device,
            owner_id=torch.arange(P, device=device).repeat_interleave(V),
        )  # fmt: skip
        # Neighbouring splatted vertices of one surface differ by more than 1 cm at low resolution.
        vis_tol_m = max(vis_tol_m, SPLAT_VISIBILITY_TOL_M)
        if masks is not None:
            m = _sample_nearest(
                torch.as_tensor(masks, device=device).permute(1, 2, 0), raster.hw
            )  # (h, w, P)
            own = raster.person_id
            keep = (own >= 0) & m.gather(2, own.clamp(min=0)[..., None])[..., 0]
            raster.person_id = torch.where(keep, own, torch.full_like(own, -1))
            raster.depth_m = torch.where(
                keep, raster.depth_m, torch.full_like(raster.depth_m, float("inf"))
            )
    n_visible = visible_vertices(verts, raster, vis_tol_m).sum(1).cpu().numpy()
    h, w = raster.hw
    d_r = _sample_nearest(torch.as_tensor(dmap, device=device), (h, w))
    # The area rule counts owned pixels as the reference does (before our erosion and depth
    # validity).
    owned = torch.bincount(raster.person_id.reshape(-1) + 1, minlength=P + 1).cpu().numpy()[1:]
    ids = raster.person_id if erode_px <= 0 else _erode_ids(raster.person_id, erode_px)
    ids = torch.where(torch.isfinite(d_r) & (d_r > 0), ids, torch.full_like(ids, -1))
    zc = raster.depth_m

    out = Cues.empty(P, (h, w), raster.scale)
    out.n_visible = n_visible.astype(np.int64)
    min_area = min_area_fraction * h * w
    flat_ids = ids.reshape(-1)
    order = torch.argsort(
        flat_ids
    )  # group pixels by owner once instead of P full-image comparisons
    counts = torch.bincount(flat_ids + 1, minlength=P + 1).cpu().numpy()
    starts = np.concatenate([[0], np.cumsum(counts)])
    rows_all = torch.div(order, w, rounding_mode="floor")
    for p in range(P):
        pix = order[starts[p + 1] : starts[p + 2]]
        out.n_pixels[p] = len(pix)
        if owned[p] < min_area:
            out.removed[p] = "area"
            continue
        if n_visible[p] < min_visible_fraction * V:
            out.removed[p] = "visible"
            continue
        if len(pix) < MIN_VALID_PIXELS:
            out.removed[p] = "depth"  # (almost) no valid depth under the person
            continue
        # The post-IQR area rule, scaled to the pixels that carry a valid depth (= the reference's
        # rule when every owned pixel is valid and nothing is eroded).
        min_keep = max(MIN_VALID_PIXELS, min_area * len(pix) / owned[p])
        _person_stats(out, p, d_r.reshape(-1)[pix].double(), zc.reshape(-1)[pix].double(),
                      rows_all[starts[p + 1] : starts[p + 2]], h, min_keep, iqr_factor, inlier_m,
                      bottom_quantile)  # fmt: skip
    return out


def _person_stats(
    out: Cues, p, d, z, rows, h, min_keep, iqr_factor, inlier_m, bottom_quantile
) -> None:
    """Fill person p's statistics from their owned pixels (cue d, rendered depth z, row index)."""
    q1, q3 = torch.quantile(d, torch.tensor([0.25, 0.75], dtype=d.dtype, device=d.device)).tolist()
    iqr = q3 - q1
    lo, hi = max(q1 - iqr_factor * iqr, 0.0), q3 + iqr_factor * iqr
    # Strict fences as the reference, except for a zero IQR (a flat or quantised, e.g. 16UC1 mm,
    # cue), where strict fences would reject every pixel (spec §11 item 12).
    keep = (d > lo) & (d < hi) if iqr > 0 else (d >= lo) & (d <= hi)
    if int(keep.sum()) < min_keep:
        out.removed[p] = "iqr"
        return
    d, z, rows = d[keep], z[keep], rows[keep]
    # Row-demeaned fit: only horizontal variation within a row is compared (the cue may have a
    # vertical bias).
    cnt = torch.zeros(h, dtype=d.dtype, device=d.device).index_add_(0, rows, torch.ones_like(d))
    d_mean = torch.zeros_like(cnt).index_add_(0, rows, d) / cnt.clamp(min=1)
    z_mean = torch.zeros_like(cnt).index_add_(0, rows, z) / cnt.clamp(min=1)
    dt, zt = d - d_mean[rows], z - z_mean[rows]
    sdd, szz, sdz = float((dt * dt).sum()), float((zt * zt).sum()), float((dt * zt).sum())
    n = len(d)
    if sdd > 1e-12 * max(n, 1) * max(float(d.abs().mean()) ** 2, 1e-30):
        slope = sdz / sdd
        c = float(zt.mean()) - slope * float(dt.mean())
        corr = sdz / np.sqrt(sdd * szz) if szz > 0 else 0.0
        inl = (slope * dt + c - zt).abs() <= inlier_m
    # one pixel per row, or a constant cue: the fit is undefined (spec §11 item 12); keep all
    # pixels
    else:
        slope, corr = 0.0, 0.0
        inl = torch.ones_like(d, dtype=torch.bool)
    if not bool(inl.any()):
        out.removed[p] = "inliers"
        return
    d, z, rows = d[inl], z[inl], rows[inl]
    out.slope[p], out.corr[p] = slope, corr if np.isfinite(corr) else 0.0
    out.d[p], out.z[p] = float(d.mean()), float(z.mean())
    out.depth_std[p] = float(d.std(unbiased=False)) if len(d) > 1 else 0.0
    out.n_inliers[p] = len(d)
    r = rows.double()
    bottom = r >= torch.quantile(r, bottom_quantile)
    out.d_bot[p], out.z_bot[p] = float(d[bottom].mean()), float(z[bottom].mean())
