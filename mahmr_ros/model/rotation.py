"""Deprecated: the rotation conversions moved to ``mahmr_ros.geometry`` (kept here for old
imports).

``rot6d_to_rotmat``, ``axis_angle_to_rotmat`` and ``rotmat_to_axis_angle`` are the geometry
functions themselves. The two ``quat_wxyz`` helpers remain for callers that still use that order;
new code uses ``mahmr_ros.geometry.rotmat_to_quat_xyzw`` (ROS order).
"""

from __future__ import annotations

import warnings

import roma
import torch
from torch import Tensor

from mahmr_ros.geometry.rotation import (
    axis_angle_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat_xyzw,
)

warnings.warn(
    "mahmr_ros.model.rotation is deprecated; use mahmr_ros.geometry",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "axis_angle_to_rotmat",
    "quaternion_to_axis_angle",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quaternion",
]


def rotmat_to_quaternion(rotmat: Tensor) -> Tensor:
    """Deprecated: ``quat_wxyz`` (..., 4), w >= 0; use
    ``mahmr_ros.geometry.rotmat_to_quat_xyzw``."""
    return roma.quat_xyzw_to_wxyz(rotmat_to_quat_xyzw(rotmat))


def quaternion_to_axis_angle(quat_wxyz: Tensor) -> Tensor:
    """Deprecated: unit ``quat_wxyz`` (..., 4) -> (..., 3) axis-angle, angle in [0, pi]; NaN
    becomes 0."""
    return torch.nan_to_num(roma.unitquat_to_rotvec(roma.quat_wxyz_to_xyzw(quat_wxyz)), nan=0.0)
