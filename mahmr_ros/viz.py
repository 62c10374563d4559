"""Debug overlays and scene export (ROS-free): shaded meshes over an image, .glb/.ply scenes.

Colours are stable per ``track_id`` (hash of the id), so a person keeps their colour across frames
and runs.
"""

from __future__ import annotations

import colorsys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mahmr_ros.geometry import unproject
from mahmr_ros.render.raster import rasterize_meshes
from mahmr_ros.types import HumanEstimate

_GOLDEN = 0.618033988749895


def track_color(track_id: str, index: int = 0) -> tuple[int, int, int]:
    """Stable BGR colour of a person.

    Args:
        track_id: the person's id; "" (no tracker) falls back to ``index``.
        index: position in the frame's list, used only when ``track_id`` is empty.

    Returns:
        (b, g, r) uint8 values, saturated and bright enough to stand out on photos.
    """
    key = zlib.crc32(track_id.encode("utf-8")) if track_id else index
    hue = (key * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P, F, 3) unit normals of (P, V, 3) meshes."""
    tri = vertices[:, faces]  # (P, F, 3, 3)
    n = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def render_overlay(
    image_bgr: np.ndarray,
    humans: Sequence[HumanEstimate],
    faces: np.ndarray,
    K: np.ndarray | None = None,
    alpha: float = 0.6,
) -> np.ndarray:
    """Shaded meshes drawn over the image (nearest person in front).

    Args:
        image_bgr: (H, W, 3) uint8 BGR image.
        humans: people in the camera frame of ``K``; each ``vertices`` is (V, 3) metres and matches
            ``faces``.
        faces: (F, 3) int vertex indices of the body model (``MeshTopology.faces``).
        K: (3, 3) intrinsics of ``image_bgr``, pixels; None = the first person's ``K`` (the camera
            they were placed with).
        alpha: mesh opacity in [0, 1].

    Returns:
        (H, W, 3) uint8 BGR copy of the image with the meshes blended in (Lambert shading, light at
        the camera).

    Raises:
        ValueError: bad image, K, alpha or faces/vertices mismatch.
    """
    image = np.asarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"[viz] image_bgr must be (H, W, 3) uint8, got {image.shape} {image.dtype}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"[viz] alpha must be in [0, 1], got {alpha}")
    out = image.copy()
    if len(humans) == 0:
        return out
    if K is None:
        K = humans[0].K
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    counts = {np.asarray(h.vertices).shape for h in humans}
    if len(counts) != 1:
        raise ValueError(
            f"[viz] all humans must share one topology, got vertex arrays of shapes {counts}"
        )
    verts = np.stack([np.asarray(h.vertices, dtype=np.float32) for h in humans])
    raster = rasterize_meshes(verts, faces, K, image.shape[:2])
    person = raster.person_id.numpy()
    face = raster.prim_id.numpy()
    covered = person >= 0
    if not covered.any():
        return out
    normals = _face_normals(verts, faces)  # (P, F, 3), camera frame
    # Light from the camera: brightness = |cos| between the face normal and the viewing ray of the
    # pixel.
    rows, cols = np.nonzero(covered)
    p, f = person[covered], face[covered]
    rays = unproject(
        np.stack([cols, rows], axis=1), K
    )  # (N, 3) float64, viewing ray of each pixel
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    shade = 0.35 + 0.65 * np.abs(np.einsum("nc,nc->n", normals[p, f], rays))
    palette = np.array(
        [track_color(h.track_id, i) for i, h in enumerate(humans)], dtype=np.float32
    )
    colour = palette[p] * shade[:, None]
    blended = (1.0 - alpha) * out[rows, cols].astype(np.float32) + alpha * colour
    out[rows, cols] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


def save_scene(path: str | Path, humans: Sequence[HumanEstimate], faces: np.ndarray) -> Path:
    """Write the people as coloured meshes (camera frame, metres) for Blender/MeshLab/web viewers.

    Args:
        path: ``.glb``/``.gltf`` (one node per person, named by track id) or ``.ply`` (all people
            merged, per-vertex colours).
        humans: people with (V, 3) ``vertices`` in metres, camera frame.
        faces: (F, 3) int vertex indices of the body model.

    Returns:
        The written path.

    Raises:
        ValueError: unsupported extension or no people.
    """
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".glb", ".gltf", ".ply"):
        raise ValueError(f"[viz] save_scene writes .glb, .gltf or .ply, got '{path.name}'")
    if len(humans) == 0:
        raise ValueError("[viz] save_scene needs at least one person")
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    meshes = []
    for i, human in enumerate(humans):
        b, g, r = track_color(human.track_id, i)
        mesh = trimesh.Trimesh(np.asarray(human.vertices, dtype=np.float64), faces, process=False)
        mesh.visual.vertex_colors = np.tile([r, g, b, 255], (len(mesh.vertices), 1)).astype(
            np.uint8
        )
        meshes.append(mesh)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".ply":
        trimesh.util.concatenate(meshes).export(path)
    else:
        scene = trimesh.Scene()
        for i, (human, mesh) in enumerate(zip(humans, meshes)):
            scene.add_geometry(
                mesh, node_name=human.track_id or f"person_{i}", geom_name=f"mesh_{i}"
            )
        scene.export(path)
    return path


__all__ = ["render_overlay", "save_scene", "track_color"]
