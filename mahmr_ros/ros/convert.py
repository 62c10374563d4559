"""FrameResult <-> ROS messages: HumanMeshArray, MeshTopology, TF transforms, RViz markers (no
rclpy node).

Frames and orientation conventions:
    * Every output is in the OpenCV optical frame of the input image (``header.frame_id``: x right,
      y down, z forward, metres) and carries the input header (stamp and frame_id) unchanged.
    * ``HumanEstimate.orientation`` (``R_cam_smpl``) is the body's global orientation in the camera
      frame, expressed for the SMPL canonical body frame: y up (towards the head), z forward (out
      of the body front), x to the body's left. For SMPL this is ``rotmats[0]``; estimators of
      other body models give their orientation in the same convention.
    * ROS outputs use REP-155 body axes: x out of the body front, y to the body's left, z up
      towards the head. ``R_cam_body = R_cam_smpl @ R_SMPL_BODY`` where the columns of
      ``R_SMPL_BODY`` are the REP-155 axes written in SMPL canonical coordinates (x_body = z_smpl,
      y_body = x_smpl, z_body = y_smpl).
    * ``HumanMesh.pelvis`` (pose) and the TF ``body_<id>`` transform are the same: position =
      mid-hip (``HumanEstimate.pelvis``), orientation = ``R_cam_body``. The raw SMPL global
      orientation stays available as ``HumanMesh.pose[0:3]`` (axis-angle, camera frame).

Quaternions are ``quat_xyzw`` (ROS order) everywhere (``mahmr_ros.geometry``).
"""

from __future__ import annotations

import colorsys
import zlib

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped, Vector3
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from mahmr_ros.geometry import (
    axis_angle_to_rotmat,
    quat_xyzw_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat_xyzw,
)
from mahmr_ros.msg import HumanMesh, HumanMeshArray
from mahmr_ros.msg import MeshTopology as MeshTopologyMsg
from mahmr_ros.pipeline import InputError
from mahmr_ros.types import FloorEstimate, FrameResult, HumanEstimate, MeshTopology

# Columns: REP-155 body axes (front, left, up) in SMPL canonical body coordinates (x left, y up, z
# front).
R_SMPL_BODY = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
BODY_FRAME_PREFIX = "body_"
MARKER_NAMESPACE = "mahmr"


# --- rotations (mahmr_ros.geometry: scipy on arrays, quat_xyzw = ROS order) ----------------------


def body_rotmat(human: HumanEstimate) -> np.ndarray:
    """``R_cam_body`` (3, 3): REP-155 body axes in the camera frame (identity SMPL orientation if
    unknown)."""
    R_cam_smpl = (
        np.eye(3) if human.orientation is None else np.asarray(human.orientation, np.float64)
    )
    return R_cam_smpl @ R_SMPL_BODY


# --- HumanMeshArray / MeshTopology ---------------------------------------------------------------


def _roi(bbox_xyxy: np.ndarray, image_hw: tuple[int, int]) -> RegionOfInterest:
    h, w = image_hw
    x1, y1, x2, y2 = (float(v) for v in bbox_xyxy)
    if w > 0 and h > 0:
        x1, x2 = np.clip([x1, x2], 0, w)
        y1, y2 = np.clip([y1, y2], 0, h)
    x1, y1 = max(x1, 0.0), max(y1, 0.0)
    roi = RegionOfInterest()
    roi.x_offset, roi.y_offset = int(np.floor(x1)), int(np.floor(y1))
    roi.width = max(int(np.ceil(x2)) - roi.x_offset, 0)
    roi.height = max(int(np.ceil(y2)) - roi.y_offset, 0)
    roi.do_rectify = False
    return roi


def _vec3(values) -> Vector3:
    x, y, z = (float(v) for v in values)
    return Vector3(x=x, y=y, z=z)


def pose_msg(position, rotmat) -> Pose:
    """Position (3,) m + (3, 3) rotation -> geometry_msgs/Pose."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    x, y, z, w = rotmat_to_quat_xyzw(np.asarray(rotmat, np.float64))
    pose.orientation = Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))
    return pose


def human_to_msg(
    human: HumanEstimate, image_hw=(0, 0), publish_vertices: bool = True
) -> HumanMesh:
    """One HumanEstimate -> HumanMesh (camera frame; pelvis orientation in REP-155 body axes)."""
    msg = HumanMesh()
    msg.id = human.track_id
    msg.confidence = float(human.score)
    msg.roi = _roi(human.bbox_xyxy, image_hw)
    msg.pelvis = pose_msg(human.pelvis, body_rotmat(human))
    msg.translation = _vec3(human.transl)
    msg.height_m = float(human.height_m)
    msg.is_child = bool(human.is_child)
    msg.shape = np.asarray(human.betas, np.float32).ravel()
    if human.pose is not None:
        msg.pose = np.asarray(human.pose, np.float32).ravel()
    elif human.rotmats.ndim == 3 and len(human.rotmats):
        msg.pose = (
            rotmat_to_axis_angle(np.asarray(human.rotmats, np.float64)).astype(np.float32).ravel()
        )
    msg.joints = np.asarray(human.joints, np.float32).ravel()
    if publish_vertices:
        msg.vertices = np.asarray(human.vertices, np.float32).ravel()
    msg.depth_sigma_m = float(human.depth_sigma_m)
    msg.velocity = _vec3(human.velocity)
    return msg


def frame_to_msg(
    result: FrameResult,
    header: Header,
    publish_vertices: bool = True,
    processing_ms: float | None = None,
) -> HumanMeshArray:
    """FrameResult -> HumanMeshArray with the input header (stamp, frame_id) unchanged.

    Args:
        result: the pipeline's output for the frame.
        header: the source image's header.
        publish_vertices: False leaves every ``vertices`` field empty (bandwidth).
        processing_ms: wall time to report; None = ``result.timings_ms["total"]``.
    """
    msg = HumanMeshArray()
    msg.header = header
    msg.body_model = result.body_model
    msg.k = [float(v) for v in np.asarray(result.K_used, np.float64).ravel()]
    msg.k_estimated = bool(result.K_estimated)
    msg.humans = [human_to_msg(h, result.image_hw, publish_vertices) for h in result.humans]
    total = result.timings_ms.get("total", 0.0) if processing_ms is None else processing_ms
    msg.processing_ms = float(total)
    return msg


def topology_to_msg(topology: MeshTopology, num_vertices: int | None = None) -> MeshTopologyMsg:
    """MeshTopology -> its message (faces flattened F x 3, row-major)."""
    msg = MeshTopologyMsg()
    msg.body_model = topology.body_model
    msg.num_vertices = int(topology.num_vertices if num_vertices is None else num_vertices)
    msg.faces = np.ascontiguousarray(topology.faces, np.uint32).ravel()
    msg.joint_names = [str(name) for name in topology.joint_names]
    return msg


def msg_to_topology(msg: MeshTopologyMsg) -> MeshTopology:
    return MeshTopology(
        msg.body_model, np.asarray(msg.faces, np.uint32).reshape(-1, 3), list(msg.joint_names)
    )


def msg_to_humans(msg: HumanMeshArray) -> list[HumanEstimate]:
    """HumanMeshArray -> HumanEstimates (the inverse of ``frame_to_msg``, for subscribers and the
    demo).

    ``rotmats`` come from ``pose`` when it holds K x 3 axis-angle values; the orientation goes back
    from REP-155 to the SMPL canonical convention. ``focal``/``principal_point`` come from the
    array's ``k``.
    """
    K = np.asarray(msg.k, np.float64).reshape(3, 3)
    humans = []
    for mesh in msg.humans:
        q = mesh.pelvis.orientation
        R_cam_body = quat_xyzw_to_rotmat(np.array([q.x, q.y, q.z, q.w], np.float64))
        pose = np.asarray(mesh.pose, np.float32)
        rotmats = np.zeros((0, 3, 3))
        if pose.size and pose.size % 3 == 0:
            rotmats = axis_angle_to_rotmat(pose.astype(np.float64).reshape(-1, 3))
        roi = mesh.roi
        p = mesh.pelvis.position
        humans.append(
            HumanEstimate(
                score=mesh.confidence,
                bbox_xyxy=[
                    roi.x_offset,
                    roi.y_offset,
                    roi.x_offset + roi.width,
                    roi.y_offset + roi.height,
                ],
                rotmats=rotmats,
                betas=np.asarray(mesh.shape, np.float32),
                transl=[mesh.translation.x, mesh.translation.y, mesh.translation.z],
                vertices=np.asarray(mesh.vertices, np.float32).reshape(-1, 3),
                joints=np.asarray(mesh.joints, np.float32).reshape(-1, 3),
                focal=[K[0, 0], K[1, 1]],
                principal_point=[K[0, 2], K[1, 2]],
                height_m=mesh.height_m,
                is_child=mesh.is_child,
                track_id=mesh.id,
                body_model=msg.body_model,
                pose=pose,
                pelvis=[p.x, p.y, p.z],
                orientation=R_cam_body @ R_SMPL_BODY.T,
                depth_sigma_m=mesh.depth_sigma_m,
                velocity=[mesh.velocity.x, mesh.velocity.y, mesh.velocity.z],
            )
        )
    return humans


# --- CameraInfo ----------------------------------------------------------------------------------


# A pinhole focal length outside [MIN, MAX] x the larger image side is not a camera: at 0.05 the
# field of view is ~170 degrees (fisheye calibrations do not use this model), at 100 it is ~0.6
# degrees.
MIN_FOCAL_PER_SIDE = 0.05
MAX_FOCAL_PER_SIDE = 100.0


def camera_info_to_K(info, image_hw: tuple[int, int], matrix: str = "k") -> np.ndarray:
    """Validated (3, 3) float64 intrinsics from a ``sensor_msgs/CameraInfo`` for an image of
    ``image_hw``.

    Args:
        info: sensor_msgs/CameraInfo (k, p, width, height).
        image_hw: (H, W) of the image the intrinsics are for, pixels.
        matrix: "k" = ``K`` (the raw, possibly distorted image) or "p" = ``P[:3, :3]`` (the
            rectified image, ``image_rect*``).

    Raises:
        InputError: non-finite, all-zero/uncalibrated or implausible intrinsics (focal length
            outside [0.05, 100] x the larger image side, principal point far outside the image,
            last row not (0, 0, 1)), or a CameraInfo size that is not the image size (binning/ROI
            are not rescaled here).
    """
    name = "K" if matrix == "k" else "P[:3, :3]"
    values = np.asarray(info.k if matrix == "k" else info.p, np.float64)
    K = values.reshape(3, 3) if matrix == "k" else values.reshape(3, 4)[:, :3]
    if not np.all(np.isfinite(K)):
        raise InputError(f"[camera_info] {name} has non-finite entries")
    if not np.any(K) or K[0, 0] <= 0 or K[1, 1] <= 0:
        hint = " (this driver leaves P empty: set input.intrinsics k)" if matrix == "p" else ""
        raise InputError(
            f"[camera_info] {name} is uncalibrated (fx={K[0, 0]}, fy={K[1, 1]}); expected fx, fy "
            f"> 0{hint}"
        )
    h, w = image_hw
    if (int(info.width), int(info.height)) != (int(w), int(h)):
        raise InputError(
            f"[camera_info] CameraInfo size {info.width}x{info.height} != image size {w}x{h} "
            "(remap camera_info to this image's camera, or set input.use_camera_info false)"
        )
    side = max(h, w)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (MIN_FOCAL_PER_SIDE * side <= min(fx, fy) and max(fx, fy) <= MAX_FOCAL_PER_SIDE * side):
        raise InputError(
            f"[camera_info] implausible focal length fx={fx:g}, fy={fy:g} px for a {w}x{h} image "
            f"(expected {MIN_FOCAL_PER_SIDE * side:g} .. {MAX_FOCAL_PER_SIDE * side:g} px): check "
            "the calibration"
        )
    if not (-w <= cx <= 2 * w and -h <= cy <= 2 * h) or not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise InputError(
            f"[camera_info] implausible {name}: principal point ({cx:g}, {cy:g}) px for a {w}x{h} "
            f"image, last row {K[2].tolist()} (expected (0, 0, 1))"
        )
    return K


def has_distortion(info) -> bool:
    """True when the CameraInfo distortion coefficients ``d`` are not all zero (a distorted raw
    image)."""
    return bool(np.any(np.asarray(info.d, np.float64) != 0.0))


# --- TF ------------------------------------------------------------------------------------------


def _transform(header: Header, child: str, position, rotmat) -> TransformStamped:
    tf = TransformStamped()
    tf.header = header
    tf.child_frame_id = child
    tf.transform.translation = _vec3(position)
    x, y, z, w = rotmat_to_quat_xyzw(np.asarray(rotmat, np.float64))
    tf.transform.rotation = Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))
    return tf


def body_transforms(
    result: FrameResult, header: Header, joint_names: list[str] | None = None
) -> list[TransformStamped]:
    """``body_<id>`` frames (parent = ``header.frame_id``, stamp = image stamp), one per tracked
    person.

    People without an id ("" = untracked) get no frame: a REP-155 frame name must stay stable. With
    ``joint_names``, each person also gets ``<joint>_<id>`` frames at the joint positions, with the
    body's orientation.
    """
    transforms = []
    for human in result.humans:
        if not human.track_id:
            continue
        R_cam_body = body_rotmat(human)
        transforms.append(
            _transform(header, BODY_FRAME_PREFIX + human.track_id, human.pelvis, R_cam_body)
        )
        for name, joint in zip(joint_names or [], human.joints):
            transforms.append(_transform(header, f"{name}_{human.track_id}", joint, R_cam_body))
    return transforms


def floor_transform(floor: FloorEstimate, header: Header, child: str) -> TransformStamped:
    """The floor frame as a transform from ``header.frame_id`` (the image's optical frame).

    ``FloorEstimate.T_cam_floor``: REP-103 axes (x forward along the floor, y left, z up), origin
    on the floor right below the camera.
    """
    T_cam_floor = floor.T_cam_floor()
    return _transform(header, child, T_cam_floor[:3, 3], T_cam_floor[:3, :3])


# --- markers -------------------------------------------------------------------------------------


def person_colour(track_id: str, index: int) -> tuple[float, float, float]:
    """A stable RGB colour per id (per index when untracked)."""
    key = zlib.crc32(track_id.encode()) if track_id else index * 7919
    return colorsys.hsv_to_rgb((key % 360) / 360.0, 0.65, 0.95)


def markers_from_frame(
    result: FrameResult, header: Header, faces: np.ndarray, lifetime_s: float = 1.0
) -> MarkerArray:
    """One TRIANGLE_LIST mesh + one text label per person, after a DELETEALL that clears the last
    frame.

    Args:
        result: people with vertices (camera frame); people without vertices get only the label.
        header: the source image's header (markers live in its frame).
        faces: (F, 3) vertex indices of the body model.
        lifetime_s: markers vanish after this long if no new frame arrives.
    """
    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.ns = MARKER_NAMESPACE
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    for index, human in enumerate(result.humans):
        r, g, b = person_colour(human.track_id, index)
        vertices = np.asarray(human.vertices, np.float64).reshape(-1, 3)
        if len(vertices) and faces.size and faces.max() < len(vertices):
            mesh = _marker(header, 2 * index, Marker.TRIANGLE_LIST, lifetime, (r, g, b, 0.8))
            mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
            mesh.points = [Point(x=x, y=y, z=z) for x, y, z in vertices[faces.ravel()].tolist()]
            out.markers.append(mesh)
        label = _marker(header, 2 * index + 1, Marker.TEXT_VIEW_FACING, lifetime, (r, g, b, 1.0))
        top = (
            vertices[np.argmin(vertices[:, 1])]
            if len(vertices)
            else np.asarray(human.pelvis, np.float64)
        )
        label.pose.position = Point(x=float(top[0]), y=float(top[1]) - 0.15, z=float(top[2]))
        label.scale.z = 0.12
        distance_m = float(np.linalg.norm(human.pelvis))
        label.text = (
            f"{human.track_id or f'#{index}'} {human.height_m:.2f} m"
            f"{' child' if human.is_child else ''} @ {distance_m:.1f} m ({human.score:.2f})"
        )
        out.markers.append(label)
    return out


def _marker(header: Header, marker_id: int, kind: int, lifetime: Duration, rgba) -> Marker:
    marker = Marker()
    marker.header = header
    marker.ns = MARKER_NAMESPACE
    marker.id = marker_id
    marker.type = kind
    marker.action = Marker.ADD
    marker.pose.orientation.w = 1.0
    marker.color = ColorRGBA(
        r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3])
    )
    marker.lifetime = lifetime
    return marker
