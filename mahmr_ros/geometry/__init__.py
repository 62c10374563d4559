"""Geometry shared by the whole package: rotations, pinhole projection, boxes. Each concept lives
here once.

* ``rotation``: rot6d (the network's 6D layout), rotation matrices, axis-angle and ``quat_xyzw``.
  torch tensors go through ``roma``, numpy arrays through ``scipy.spatial.transform.Rotation``;
  each conversion takes either and returns the same kind (``rot6d_to_rotmat``: tensors;
  ``rotation_between``: arrays).
* ``projection``: ``project(points_cam, K)``, pinhole camera-frame metres -> pixels, and its
  inverse ``unproject(uv_px, K, depth_m)`` (numpy or torch).
* ``boxes``: ``box_iou``, ``generalized_box_iou``, ``box_cxcywh_to_xyxy`` (numpy or torch,
  broadcasting).

Conventions (as in ``mahmr_ros.types``): camera frame = OpenCV optical frame (x right, y down, z
forward, metres); pixel centres on integers; rotation matrices act on column vectors (``x' = R
x``); quaternions are ``quat_xyzw`` (ROS and scipy order); boxes are ``xyxy`` pixels unless named
otherwise.
"""

from mahmr_ros.geometry.boxes import box_cxcywh_to_xyxy, box_iou, generalized_box_iou
from mahmr_ros.geometry.projection import project, unproject
from mahmr_ros.geometry.rotation import (
    axis_angle_to_rotmat,
    quat_xyzw_to_rotmat,
    rot6d_to_rotmat,
    rotation_between,
    rotmat_to_axis_angle,
    rotmat_to_quat_xyzw,
)

__all__ = [
    "axis_angle_to_rotmat",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "generalized_box_iou",
    "project",
    "quat_xyzw_to_rotmat",
    "rot6d_to_rotmat",
    "rotation_between",
    "rotmat_to_axis_angle",
    "rotmat_to_quat_xyzw",
    "unproject",
]
