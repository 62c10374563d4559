"""Rotation encodings: 6D (Zhou et al., HMR/SPIN layout) -> rotation matrix -> axis-angle (spec §1.7, §8 #12).

Pure tensor functions, batched over any leading dims. Rotation matrices act on column vectors (x' = R x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rot6d_to_rotmat(rot6d: Tensor) -> Tensor:
    """6D rotation to a rotation matrix by Gram-Schmidt.

    The 6 numbers are a row-major 3x2 matrix: column a1 = elements (0, 2, 4), column a2 = (1, 3, 5).
    b1 = a1/|a1|, b2 = normalise(a2 - (b1.a2) b1), b3 = b1 x b2; R = [b1 b2 b3] as columns.

    Args:
        rot6d: (..., 6) float.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    m = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_quaternion(rotmat: Tensor) -> Tensor:
    """Rotation matrix to a unit quaternion (w, x, y, z), w >= 0, numerically stable for all angles.

    Args:
        rotmat: (..., 3, 3).

    Returns:
        (..., 4) quat_wxyz.
    """
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate (scaled) quaternions; use the one with the largest diagonal term (Shepperd's method).
    candidates = torch.stack(
        [
            torch.stack(
                [
                    1 + m00 + m11 + m22,
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                ],
                -1,
            ),
        ],
        dim=-2,
    )  # (..., 4 candidates, 4)
    diag = torch.stack([m00 + m11 + m22, m00, m11, m22], -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quat_wxyz: Tensor) -> Tensor:
    """Unit quaternion (w, x, y, z) to axis-angle (..., 3) (radians, angle in [0, pi]); NaN becomes 0."""
    q = torch.where(quat_wxyz[..., :1] < 0, -quat_wxyz, quat_wxyz)
    xyz = q[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle/2), with its limit 2 for tiny angles.
    factor = torch.where(sin_half > 1e-8, angle / sin_half.clamp(min=1e-8), torch.full_like(angle, 2.0))
    return torch.nan_to_num(xyz * factor, nan=0.0)


def rotmat_to_axis_angle(rotmat: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices to (..., 3) axis-angle vectors (radians)."""
    return quaternion_to_axis_angle(rotmat_to_quaternion(rotmat))


def axis_angle_to_rotmat(aa: Tensor) -> Tensor:
    """Rodrigues: (..., 3) axis-angle (radians) to (..., 3, 3) rotation matrices."""
    angle = aa.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    axis = aa / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    sin, cos = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    return eye + sin * skew + (1 - cos) * (skew @ skew)
