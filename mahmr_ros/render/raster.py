"""Torch z-buffer for triangle meshes and point sets (CPU or CUDA), at full or reduced resolution.

One module, three uses: DTO pixel ownership and vertex visibility (spec dto §3.1, §10.3 step 2),
debug overlays (``mahmr_ros.viz``) and synthetic test scenes (``mahmr_ros.testing.crowd``).

Conventions:
    * Camera: OpenCV optical frame (x right, y down, z forward), metres. Pixel centres sit on
      integer coordinates (``u = fx * x / z + cx``), as in ``mahmr_ros.types``.
    * Reduced resolution: an image of (H, W) rendered with factor ``r`` has (h, w) = (round(r H),
      round(r W)) pixels and intrinsics fx' = r fx, fy' = r fy, cx' = r (cx + 0.5) - 0.5, cy' = r
      (cy + 0.5) - 0.5, so a low-resolution pixel covers exactly the original pixels it summarises
      (spec dto §11 item 4).
    * No back-face culling; triangles with any vertex at z <= ``near_m`` are dropped (no clipping).

How it works: every triangle is projected, its pixel bounding box is enumerated (triangles are
bucketed by box size, so work stays proportional to covered area), pixel centres are tested with
edge functions, depth is interpolated perspective-correctly (1/z is linear in screen space), and
each fragment is reduced into the buffer with one ``scatter_reduce(amin)`` on an int64 key =
(float32 depth bits << 32) | primitive id. Positive float32 bit patterns sort like the floats, so
the minimum key is the nearest fragment and carries its triangle (hence its person) id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mahmr_ros.geometry import project

_EMPTY = torch.iinfo(torch.int64).max
_MAX_CANDIDATES = 1 << 22  # fragments evaluated per chunk (bounds peak memory to ~100 MB)


@dataclass
class RasterResult:
    """A rendered z-buffer.

    Attributes:
        depth_m: (h, w) float32 tensor, metres along the optical axis, +inf where nothing was hit.
        person_id: (h, w) int64 tensor, index of the mesh / point set that owns the pixel, -1 where
            empty.
        prim_id: (h, w) int64 tensor, face index (meshes) or point index (points) within its owner,
            -1 empty.
        K: (3, 3) float64 numpy intrinsics of the rendered (possibly reduced) image, pixels.
        scale: factor r from original-image pixels to rendered pixels.
    """

    depth_m: torch.Tensor
    person_id: torch.Tensor
    prim_id: torch.Tensor
    K: np.ndarray
    scale: float

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.depth_m.shape[0]), int(self.depth_m.shape[1])

    @property
    def covered(self) -> torch.Tensor:
        """(h, w) bool tensor, True where something was hit."""
        return self.person_id >= 0


def scale_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """Intrinsics of an image resized by ``scale`` (pixel centres on integers, see module
    docstring).

    Args:
        K: (3, 3) intrinsics of the original image, pixels.
        scale: resize factor r > 0.

    Returns:
        (3, 3) float64 intrinsics of the resized image, pixels.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    out = K.copy()
    out[0, 0] *= scale
    out[1, 1] *= scale
    out[0, 1] *= scale
    out[0, 2] = scale * (K[0, 2] + 0.5) - 0.5
    out[1, 2] = scale * (K[1, 2] + 0.5) - 0.5
    return out


def render_scale(image_hw: tuple[int, int], max_side: int | None) -> float:
    """Resize factor so that the longer side is at most ``max_side`` (1.0 when None or already
    smaller)."""
    if max_side is None or max(image_hw) <= max_side:
        return 1.0
    return float(max_side) / float(max(image_hw))


def _check_common(K, image_hw) -> tuple[np.ndarray, tuple[int, int]]:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"[render] K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}"
        )
    H, W = (int(image_hw[0]), int(image_hw[1]))
    if H < 1 or W < 1:
        raise ValueError(f"[render] image_hw must be positive (H, W), got {image_hw}")
    return K, (H, W)


def _as_vertices(vertices_cam, device) -> torch.Tensor:
    if isinstance(vertices_cam, (list, tuple)):
        if len(vertices_cam) == 0:
            return torch.zeros((0, 0, 3), dtype=torch.float32, device=device)
        vertices_cam = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in vertices_cam])
    verts = torch.as_tensor(vertices_cam, dtype=torch.float32, device=device)
    if verts.ndim == 2:
        verts = verts[None]
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(
            f"[render] vertices must be (P, V, 3) or (V, 3), got {tuple(verts.shape)}"
        )
    return verts


def _resize_masks(masks, P: int, hw: tuple[int, int], device) -> torch.Tensor | None:
    if masks is None:
        return None
    m = torch.as_tensor(
        np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks, device=device
    )
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] != P:
        raise ValueError(f"[render] masks must be (P={P}, H, W) booleans, got {tuple(m.shape)}")
    m = m.bool()
    h, w = hw
    if tuple(m.shape[1:]) != (
        h,
        w,
    ):  # nearest resize, sampling the original pixel under each centre
        ys = (
            ((torch.arange(h, device=device) + 0.5) * (m.shape[1] / h))
            .long()
            .clamp_(max=m.shape[1] - 1)
        )
        xs = (
            ((torch.arange(w, device=device) + 0.5) * (m.shape[2] / w))
            .long()
            .clamp_(max=m.shape[2] - 1)
        )
        m = m[:, ys][:, :, xs]
    return m


def _reduce(keys: torch.Tensor, pix: torch.Tensor, hw: tuple[int, int], device) -> torch.Tensor:
    buf = torch.full((hw[0] * hw[1],), _EMPTY, dtype=torch.int64, device=device)
    if keys.numel():
        buf.scatter_reduce_(0, pix, keys, reduce="amin", include_self=True)
    return buf


def _key(depth: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    bits = depth.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return (bits << 32) | ids


def _decode(buf: torch.Tensor, hw, K_r, scale, prims_per_owner: int) -> RasterResult:
    empty = buf == _EMPTY
    depth = (buf >> 32).to(torch.int32).view(torch.float32).clone()
    depth[empty] = float("inf")
    gid = buf & 0xFFFFFFFF
    person = torch.where(empty, torch.full_like(gid, -1), gid // max(prims_per_owner, 1))
    prim = torch.where(empty, torch.full_like(gid, -1), gid % max(prims_per_owner, 1))
    h, w = hw
    return RasterResult(depth.view(h, w), person.view(h, w), prim.view(h, w), K_r, scale)


def rasterize_meshes(
    vertices_cam,
    faces,
    K,
    image_hw: tuple[int, int],
    *,
    max_side: int | None = None,
    scale: float | None = None,
    masks=None,
    near_m: float = 1e-3,
    device: str | torch.device | None = None,
) -> RasterResult:
    """Z-buffer of P meshes sharing one topology (nearest surface wins).

    Args:
        vertices_cam: (P, V, 3) or (V, 3) float, metres, camera frame (array, tensor or list of (V,
            3)).
        faces: (F, 3) int vertex indices shared by all meshes.
        K: (3, 3) intrinsics of the ORIGINAL image, pixels.
        image_hw: (H, W) of the original image.
        max_side: render so that the longer side is at most this many pixels (spec dto §3.1 uses
            512).
        scale: explicit resize factor r (overrides ``max_side``).
        masks: optional (P, H, W) bool instance masks (original or rendered resolution). A fragment
            of mesh p outside mask p is discarded (spec dto §3.1 step 3: ownership needs mesh AND
            own mask).
        near_m: triangles with a vertex closer than this (metres) are dropped.
        device: torch device; default: the device of ``vertices_cam`` if a tensor, else CPU.

    Returns:
        RasterResult at (h, w) = (round(r H), round(r W)); ``prim_id`` holds the face index.
    """
    K, (H, W) = _check_common(K, image_hw)
    if device is None:
        device = vertices_cam.device if isinstance(vertices_cam, torch.Tensor) else "cpu"
    r = float(scale) if scale is not None else render_scale((H, W), max_side)
    if not r > 0:
        raise ValueError(f"[render] scale must be > 0, got {r}")
    hw = (max(1, round(H * r)), max(1, round(W * r)))
    K_r = scale_intrinsics(K, r)
    verts = _as_vertices(vertices_cam, device)
    faces_t = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device)
    if faces_t.ndim != 2 or faces_t.shape[1] != 3:
        raise ValueError(
            f"[render] faces must be (F, 3) integer indices, got {tuple(faces_t.shape)}"
        )
    P, V = verts.shape[0], verts.shape[1]
    F = faces_t.shape[0]
    if P and F and (int(faces_t.max()) >= V or int(faces_t.min()) < 0):
        raise ValueError(
            f"[render] faces index vertex {int(faces_t.max())} but meshes have V={V} vertices"
        )
    mask_r = _resize_masks(masks, P, hw, device)
    if P == 0 or F == 0:
        none = torch.zeros(0, dtype=torch.int64, device=device)
        return _decode(_reduce(none, none, hw, device), hw, K_r, r, F)

    tri = verts[:, faces_t].reshape(P * F, 3, 3)  # (T, 3 corners, xyz)
    z = tri[..., 2]
    ok = (z > near_m).all(dim=1) & torch.isfinite(tri).all(dim=(1, 2))
    zs = z.clamp(min=near_m)
    uv = project(tri, K_r, min_depth_m=near_m)  # (T, 3 corners, 2) px
    u, v = uv[..., 0], uv[..., 1]
    h, w = hw
    x0 = torch.ceil(u.min(1).values).clamp(0, w - 1)
    x1 = torch.floor(u.max(1).values).clamp(-1, w - 1)
    y0 = torch.ceil(v.min(1).values).clamp(0, h - 1)
    y1 = torch.floor(v.max(1).values).clamp(-1, h - 1)
    ok &= (x1 >= x0) & (y1 >= y0)
    # Signed double area; degenerate (edge-on) triangles cover no pixel centre.
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (u[:, 2] - u[:, 0]) * (v[:, 1] - v[:, 0])
    ok &= area.abs() > 1e-12
    size = torch.maximum(x1 - x0, y1 - y0) + 1
    ids = torch.nonzero(ok).squeeze(1)
    keys, pixs = [], []
    side = 1
    max_size = int(size[ids].max()) if ids.numel() else 0
    while ids.numel() and side // 2 < max_size:
        sel = ids[(size[ids] <= side) & (size[ids] > side // 2)]
        chunk = max(1, _MAX_CANDIDATES // (side * side))
        for start in range(0, sel.numel(), chunk):
            k, p = _fragments(
                sel[start : start + chunk], side, u, v, zs, area, x0, x1, y0, y1, w, F, mask_r
            )
            keys.append(k)
            pixs.append(p)
        side *= 2
    keys_t = torch.cat(keys) if keys else torch.zeros(0, dtype=torch.int64, device=device)
    pix_t = torch.cat(pixs) if pixs else torch.zeros(0, dtype=torch.int64, device=device)
    return _decode(_reduce(keys_t, pix_t, hw, device), hw, K_r, r, F)


def _fragments(t, side, u, v, zs, area, x0, x1, y0, y1, w, F, mask_r):
    """Candidate pixels of triangles ``t`` in a side x side box: (keys, flat pixel indices) of
    inside ones."""
    device = u.device
    offs = torch.arange(side, device=device, dtype=u.dtype)
    px = (x0[t, None, None] + offs[None, None, :]).expand(
        -1, side, side
    )  # (Tb, side, side) pixel x
    py = (y0[t, None, None] + offs[None, :, None]).expand(-1, side, side)
    inb = (px <= x1[t, None, None]) & (py <= y1[t, None, None])
    ut, vt = u[t], v[t]  # (Tb, 3)
    inv_area = 1.0 / area[t]

    def edge(i, j):  # barycentric weight of the corner opposite edge (i, j)
        a = (ut[:, j] - ut[:, i])[:, None, None] * (py - vt[:, i, None, None])
        b = (vt[:, j] - vt[:, i])[:, None, None] * (px - ut[:, i, None, None])
        return (a - b) * inv_area[:, None, None]

    b0, b1, b2 = edge(1, 2), edge(2, 0), edge(0, 1)
    inside = inb & (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    zt = zs[t]
    inv_z = b0 / zt[:, 0, None, None] + b1 / zt[:, 1, None, None] + b2 / zt[:, 2, None, None]
    depth = 1.0 / inv_z
    tid = t[:, None, None].expand(-1, side, side)
    pix = py.long() * w + px.long()
    if mask_r is not None:
        owner = tid // F
        inside &= mask_r.view(mask_r.shape[0], -1)[
            owner.clamp(min=0), pix.clamp(0, mask_r[0].numel() - 1)
        ]
    return _key(depth[inside], tid[inside]), pix[inside]


def splat_points(
    points_cam,
    K,
    image_hw: tuple[int, int],
    *,
    owner_id=None,
    max_side: int | None = None,
    scale: float | None = None,
    radius_px: int = 0,
    near_m: float = 1e-3,
    device: str | torch.device | None = None,
) -> RasterResult:
    """Z-buffer of points, each splatted to a (2 radius + 1)^2 pixel square (scatter-min, spec dto
    §10.3).

    Args:
        points_cam: (N, 3) float, metres, camera frame.
        K: (3, 3) intrinsics of the ORIGINAL image, pixels.
        image_hw: (H, W) of the original image.
        owner_id: (N,) int, owner (person) index of each point; default 0.
        max_side, scale: as in ``rasterize_meshes``.
        radius_px: splat half-size in rendered pixels (0 = the nearest pixel only).
        near_m: points closer than this (metres) are dropped.
        device: torch device (default CPU, or the tensor's device).

    Returns:
        RasterResult; ``person_id`` is the owner and ``prim_id`` the point's index in
        ``points_cam``.
    """
    K, (H, W) = _check_common(K, image_hw)
    if device is None:
        device = points_cam.device if isinstance(points_cam, torch.Tensor) else "cpu"
    r = float(scale) if scale is not None else render_scale((H, W), max_side)
    hw = (max(1, round(H * r)), max(1, round(W * r)))
    K_r = scale_intrinsics(K, r)
    pts = torch.as_tensor(points_cam, dtype=torch.float32, device=device).reshape(-1, 3)
    N = pts.shape[0]
    owner = (
        torch.zeros(N, dtype=torch.int64, device=device)
        if owner_id is None
        else torch.as_tensor(owner_id, dtype=torch.int64, device=device).reshape(-1)
    )
    if owner.shape[0] != N:
        raise ValueError(f"[render] owner_id has {owner.shape[0]} entries for {N} points")
    ok = (pts[:, 2] > near_m) & torch.isfinite(pts).all(1)
    zs = pts[:, 2].clamp(min=near_m)
    uv = torch.round(project(pts, K_r, min_depth_m=near_m)).long()  # (N, 2) nearest pixel
    u, v = uv[:, 0], uv[:, 1]
    h, w = hw
    gid = owner * N + torch.arange(N, device=device)
    if radius_px > 0:
        o = torch.arange(-radius_px, radius_px + 1, device=device)
        du, dv = torch.meshgrid(o, o, indexing="xy")
        u = (u[:, None] + du.reshape(1, -1)).reshape(-1)
        v = (v[:, None] + dv.reshape(1, -1)).reshape(-1)
        k = du.numel()
        ok, zs, gid = ok.repeat_interleave(k), zs.repeat_interleave(k), gid.repeat_interleave(k)
    ok &= (u >= 0) & (u < w) & (v >= 0) & (v < h)
    buf = _reduce(_key(zs[ok], gid[ok]), v[ok] * w + u[ok], hw, device)
    return _decode(buf, hw, K_r, r, N)


def project_to_raster(
    points_cam, raster: RasterResult
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest rendered pixel of each point.

    Args:
        points_cam: (..., 3) float tensor, metres, camera frame.
        raster: the buffer (its K and size are used).

    Returns:
        (row, col, inside): (...,) int64 pixel indices (clamped) and a bool mask of points that
        fall inside the rendered image in front of the camera.
    """
    z = points_cam[..., 2]
    uv = torch.round(project(points_cam, raster.K, min_depth_m=1e-6))
    col, row = uv[..., 0], uv[..., 1]
    h, w = raster.hw
    inside = (z > 1e-6) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return row.long().clamp(0, h - 1), col.long().clamp(0, w - 1), inside


def visible_vertices(vertices_cam, raster: RasterResult, tol_m: float = 0.01) -> torch.Tensor:
    """Per-vertex visibility against a composite z-buffer (spec dto §3.1 step 5).

    A vertex is visible iff its nearest rendered pixel is covered and ``z_v <= zbuf + tol_m``.

    Args:
        vertices_cam: (P, V, 3) or (V, 3) float, metres, camera frame.
        raster: the composite buffer of the same scene.
        tol_m: depth tolerance, metres (official: 0.01).

    Returns:
        (P, V) (or (V,)) bool tensor.
    """
    verts = torch.as_tensor(vertices_cam, dtype=torch.float32, device=raster.depth_m.device)
    row, col, inside = project_to_raster(verts, raster)
    zbuf = raster.depth_m[row, col]
    return inside & torch.isfinite(zbuf) & (verts[..., 2] <= zbuf + tol_m)
