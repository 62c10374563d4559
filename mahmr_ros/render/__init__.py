"""Torch z-buffer rendering (triangles and points) for DTO cues, overlays and synthetic scenes."""

from mahmr_ros.render.raster import (
    RasterResult,
    project_to_raster,
    rasterize_meshes,
    render_scale,
    scale_intrinsics,
    splat_points,
    visible_vertices,
)

__all__ = [
    "RasterResult",
    "project_to_raster",
    "rasterize_meshes",
    "render_scale",
    "scale_intrinsics",
    "splat_points",
    "visible_vertices",
]
