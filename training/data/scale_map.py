"""Training-side GT geometry: person boxes from projected joints (spec §4.5) and the SAT scale map
(§4.6).

Both are pure functions of pixels in the RESIZED, unpadded network image (the long side is
``input_size`` before padding; see ``dataset.py``), so they are testable without a body model.
"""

from __future__ import annotations

import math

import numpy as np

CELL_PX = 28  # lvl1 cell size at input_size 1288 (spec §1.2)
BOX_ENLARGE = 1.2
MIN_VISIBLE_JOINTS = 4


def visible_joints(
    joints_px: np.ndarray, resized_hw: tuple[int, int], valid: np.ndarray | None = None
) -> np.ndarray:
    """Which projected joints fall inside the resized image.

    Args:
        joints_px: (P, J, 2) float, resized-image pixels (x right, y down).
        resized_hw: (h', w') of the resized, unpadded image.
        valid: optional (P, J) bool annotation visibility, and-ed in.

    Returns:
        (P, J) bool.
    """
    h, w = resized_hw
    x, y = joints_px[..., 0], joints_px[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return inside if valid is None else inside & np.asarray(valid, bool)


def gt_boxes(
    joints_px: np.ndarray,
    resized_hw: tuple[int, int],
    input_size: int = 1288,
    boxes_xyxy_px: np.ndarray | None = None,
    enlarge: float = BOX_ENLARGE,
) -> np.ndarray:
    """GT boxes as the official loader builds them (spec §4.5).

    The extent of all joints (in or out of the image), merged with the dataset box when given,
    enlarged by ``enlarge`` about its centre, normalised by ``input_size``, clamped to ``[1e-6,
    (size - 1) / input_size]`` per axis (size = w' for x, h' for y) and returned as centre/size.

    Args:
        joints_px: (P, J, 2) float, resized-image pixels.
        resized_hw: (h', w').
        input_size: the network's long side (1288), the box normaliser.
        boxes_xyxy_px: optional (P, 4) dataset boxes, resized-image pixels.
        enlarge: scale factor about the box centre.

    Returns:
        (P, 4) float32 (cx, cy, w, h) / input_size.
    """
    joints_px = np.asarray(joints_px, np.float64)
    lo, hi = joints_px.min(1), joints_px.max(1)  # (P, 2)
    if boxes_xyxy_px is not None:
        boxes = np.asarray(boxes_xyxy_px, np.float64).reshape(-1, 4)
        lo, hi = np.minimum(lo, boxes[:, :2]), np.maximum(hi, boxes[:, 2:])
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * enlarge
    h, w = resized_hw
    upper = (np.array([w, h], np.float64) - 1) / input_size
    lo = np.clip((centre - half) / input_size, 1e-6, upper)
    hi = np.clip((centre + half) / input_size, 1e-6, upper)
    return np.concatenate([(lo + hi) / 2, hi - lo], 1).astype(np.float32)


def map_size(resized_hw: tuple[int, int], cell_px: int = CELL_PX) -> tuple[int, int]:
    """(rows, cols) of the scale map: ceil(h'/cell), ceil(w'/cell), each rounded up to an even
    number."""
    return tuple(2 * math.ceil(math.ceil(s / cell_px) / 2) for s in resized_hw)


def scale_map(
    vertices_px: np.ndarray,
    boxes_cxcywh: np.ndarray,
    depth_order: np.ndarray,
    resized_hw: tuple[int, int],
    cell_px: int = CELL_PX,
) -> np.ndarray:
    """Scale-map GT for SAT supervision (spec §4.6).

    Each cell hit by a projected vertex of a person gets (1, s) with ``s = clamp(|(w, h)|_2, 0,
    1)`` of that person's normalised box. People are painted far to near (``depth_order``
    descending), so nearer people overwrite farther ones. Vertices outside the resized image are
    ignored. The caller passes the vertices of the once-subdivided mesh (``subdivide_vertices``) to
    match the official density.

    Args:
        vertices_px: (P, V, 2) float, resized-image pixels.
        boxes_cxcywh: (P, 4) float, (cx, cy, w, h) / input_size, as from ``gt_boxes``.
        depth_order: (P,) float, larger = farther (the official code uses t_z / f).
        resized_hw: (h', w').
        cell_px: cell size in resized pixels.

    Returns:
        (rows, cols, 2) float32: channel 0 = person present (0/1), channel 1 = scale s (0 where
        absent).
    """
    rows, cols = map_size(resized_hw, cell_px)
    out = np.zeros((rows, cols, 2), np.float32)
    h, w = resized_hw
    boxes = np.asarray(boxes_cxcywh, np.float64).reshape(-1, 4)
    scales = np.clip(np.linalg.norm(boxes[:, 2:], axis=1), 0.0, 1.0)
    for i in np.argsort(-np.asarray(depth_order, np.float64), kind="stable"):
        uv = np.asarray(vertices_px[i], np.float64).reshape(-1, 2)
        keep = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        cells = (uv[keep] // cell_px).astype(np.int64)  # (n, 2) (col, row), repeats are harmless
        hit = np.zeros((rows, cols), bool)
        hit[cells[:, 1], cells[:, 0]] = True
        out[hit] = (1.0, scales[i])
    return out


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) int64 unique undirected edges of a triangle mesh (compute once per body, not per
    sample)."""
    faces = np.asarray(faces, np.int64)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return np.unique(edges, axis=0)


def subdivide_vertices(
    vertices: np.ndarray, faces: np.ndarray | None = None, edges: np.ndarray | None = None
) -> np.ndarray:
    """Vertices of the mesh subdivided once (original vertices + unique edge midpoints, as trimesh
    does).

    Args:
        vertices: (..., V, 3) float, any frame.
        faces: (F, 3) int vertex indices (used when ``edges`` is not given).
        edges: (E, 2) int64 precomputed ``mesh_edges(faces)``.

    Returns:
        (..., V + E, 3) float, same frame and dtype.
    """
    if edges is None:
        edges = mesh_edges(faces)
    mids = (vertices[..., edges[:, 0], :] + vertices[..., edges[:, 1], :]) / 2
    return np.concatenate([vertices, mids], axis=-2)
