"""Prediction heads and the FoV / camera maths (spec §1.7-1.8).

``MLP`` is the DETR-style stack of Linear layers (``layers.N`` keys) with ReLU between them. The
camera functions are pure tensor maths shared by the network, the postprocessing and the estimator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Fixed camera of the configs without a FoV head (stage 1, SAT-HMR): 60° vertical FoV (spec §1.2).
DEFAULT_FOV_RAD = math.pi / 3
# Lower FoV clamp of the official model (spec §1.8); the upper one is ours (spec §8 #7).
MIN_FOV_RAD = 0.08
MAX_FOV_RAD = math.pi - 1e-3


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (none after the last).

    Args:
        in_dim: input width.
        hidden_dim: width of the hidden layers.
        out_dim: output width.
        num_layers: number of Linear layers (>= 1).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def focal_from_fov(fov_rad: Tensor, height_px: Tensor) -> Tensor:
    """Focal length of a pinhole camera from its vertical field of view.

    Args:
        fov_rad: (B,) vertical FoV, radians, in (0, pi).
        height_px: (B,) image height in pixels (the resized, unpadded h' for the network, spec
            §8 #2).

    Returns:
        (B,) focal length f = h / (2 tan(fov / 2)), pixels of that image.
    """
    return height_px / (2.0 * torch.tan(fov_rad / 2.0))


def clamp_fov(fov_rad: Tensor) -> Tensor:
    """Official lower clamp 0.08 rad, plus our safety clamp below pi (f > 0); (B,) radians."""
    return fov_rad.clamp(min=MIN_FOV_RAD, max=MAX_FOV_RAD)


def camera_to_translation(
    cam_raw: Tensor, focal_px: Tensor, input_size: int
) -> tuple[Tensor, Tensor]:
    """Weak-perspective camera-head output to a metric SMPL-origin translation (spec §1.8).

    ``s = 2 sigmoid(c2) + 1e-6``, ``t = (c0 / s, c1 / s, 2 f / (s input_size))``, so the SMPL
    origin projects to ``u = cx + input_size/2 * c0``, ``v = cy + input_size/2 * c1`` in
    resized-image pixels.

    Args:
        cam_raw: (B, Q, 3) raw ``cam_head`` output (c0, c1, c2) = (tx', ty', s').
        focal_px: (B,) focal length, resized-image pixels.
        input_size: network long side (1288); the constant of the official formula, not the image
            size.

    Returns:
        pred_cam: (B, Q, 3) (s, t_x, t_y): scale and the metric x/y translation.
        pred_transl: (B, Q, 3) metres, camera frame (OpenCV optical), SMPL-origin translation.
    """
    s = 2.0 * torch.sigmoid(cam_raw[..., 2]) + 1e-6
    tx = cam_raw[..., 0] / s
    ty = cam_raw[..., 1] / s
    tz = 2.0 * focal_px[:, None] / (s * input_size)
    return torch.stack([s, tx, ty], dim=-1), torch.stack([tx, ty, tz], dim=-1)
