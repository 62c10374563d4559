"""FrameResult <-> messages without DDS: fields, frames, REP-155 axes (worked by hand), markers, K
checks."""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from mahmr_ros.geometry import axis_angle_to_rotmat, rotmat_to_quat_xyzw  # noqa: E402
from mahmr_ros.pipeline import InputError  # noqa: E402
from mahmr_ros.ros import convert  # noqa: E402
from mahmr_ros.types import FrameResult, MeshTopology  # noqa: E402

from .known import BOX_FACES, FACING_CAMERA, JOINT_NAMES, make_human  # noqa: E402

pytestmark = pytest.mark.ros

K = np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]])


def _header(frame_id="cam_optical", sec=12, nanosec=345):
    header = Header()
    header.frame_id = frame_id
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def _result(humans, image_hw=(240, 320)):
    return FrameResult(humans, K, False, {"total": 12.5}, body_model="test_box", image_hw=image_hw)


def test_facing_camera_gives_rep155_axes_and_hand_worked_quaternion():
    R_cam_body = convert.body_rotmat(make_human(orientation=FACING_CAMERA))
    np.testing.assert_allclose(
        R_cam_body[:, 0], [0, 0, -1], atol=1e-9
    )  # x: out of the front, to the camera
    np.testing.assert_allclose(
        R_cam_body[:, 1], [1, 0, 0], atol=1e-9
    )  # y: body's left = image right
    np.testing.assert_allclose(
        R_cam_body[:, 2], [0, -1, 0], atol=1e-9
    )  # z: up = -y of the optical frame
    # rows [[0,1,0],[0,0,-1],[-1,0,0]]: trace 0 -> w = 0.5, x = (R21-R12)... worked by hand: (.5,
    # .5, -.5, .5)
    np.testing.assert_allclose(rotmat_to_quat_xyzw(R_cam_body), [0.5, 0.5, -0.5, 0.5], atol=1e-9)


def test_frame_to_msg_keeps_header_and_fills_every_field():
    human = make_human(track_id="bx1", pelvis=(0.2, -0.1, 3.0))
    header = _header()
    msg = convert.frame_to_msg(_result([human, make_human(track_id="by2")]), header)
    assert msg.header.frame_id == "cam_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    assert msg.body_model == "test_box" and not msg.k_estimated
    np.testing.assert_allclose(msg.k, K.ravel())
    assert msg.processing_ms == pytest.approx(12.5)
    assert [m.id for m in msg.humans] == ["bx1", "by2"]
    mesh = msg.humans[0]
    assert len(mesh.vertices) == 8 * 3 and len(mesh.joints) == 2 * 3 and len(mesh.shape) == 11
    assert len(mesh.pose) == 24 * 3
    np.testing.assert_allclose(
        mesh.pose[:3], [np.pi, 0, 0], atol=1e-6
    )  # diag(1,-1,-1) = pi about x
    np.testing.assert_allclose(mesh.vertices[:3], human.vertices[0])
    p = mesh.pelvis.position
    np.testing.assert_allclose([p.x, p.y, p.z], [0.2, -0.1, 3.0], atol=1e-6)
    q = mesh.pelvis.orientation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0.5, 0.5, -0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose([mesh.translation.x, mesh.translation.y], [0.2, -0.3], atol=1e-6)
    assert (mesh.roi.x_offset, mesh.roi.y_offset, mesh.roi.width, mesh.roi.height) == (
        100,
        50,
        80,
        180,
    )
    assert mesh.confidence == pytest.approx(0.9) and mesh.height_m == pytest.approx(1.75)


def test_vertices_left_empty_when_disabled_and_roi_clipped_to_image():
    human = make_human().replace(bbox_xyxy=[-20, -5, 400, 100])
    msg = convert.frame_to_msg(_result([human]), _header(), publish_vertices=False)
    mesh = msg.humans[0]
    assert len(mesh.vertices) == 0 and len(mesh.joints) == 6
    assert (mesh.roi.x_offset, mesh.roi.y_offset, mesh.roi.width, mesh.roi.height) == (
        0,
        0,
        320,
        100,
    )


def test_msg_to_humans_inverts_frame_to_msg():
    orientation = axis_angle_to_rotmat(np.array([[0.3, -1.2, 0.4]]))[0] @ FACING_CAMERA
    human = make_human(track_id="bq7", orientation=orientation)
    back = convert.msg_to_humans(convert.frame_to_msg(_result([human]), _header()))[0]
    assert back.track_id == "bq7" and back.body_model == "test_box"
    np.testing.assert_allclose(back.orientation, orientation, atol=1e-5)
    np.testing.assert_allclose(back.rotmats[0], orientation, atol=1e-5)
    np.testing.assert_allclose(back.vertices, human.vertices, atol=1e-6)
    np.testing.assert_allclose(back.pelvis, human.pelvis, atol=1e-6)
    np.testing.assert_allclose(back.K, K, atol=1e-6)


def test_topology_round_trip():
    msg = convert.topology_to_msg(MeshTopology("test_box", BOX_FACES, JOINT_NAMES))
    assert msg.num_vertices == 8 and len(msg.faces) == 36
    back = convert.msg_to_topology(msg)
    np.testing.assert_array_equal(back.faces, BOX_FACES)
    assert back.joint_names == JOINT_NAMES


def test_body_transforms_only_for_tracked_people_and_optional_joint_frames():
    result = _result([make_human(track_id="bk1", pelvis=(1.0, 0.5, 4.0)), make_human(track_id="")])
    transforms = convert.body_transforms(result, _header())
    assert [t.child_frame_id for t in transforms] == ["body_bk1"]
    tf = transforms[0]
    assert tf.header.frame_id == "cam_optical" and tf.header.stamp.sec == 12
    t, r = tf.transform.translation, tf.transform.rotation
    np.testing.assert_allclose([t.x, t.y, t.z], [1.0, 0.5, 4.0], atol=1e-6)
    np.testing.assert_allclose([r.x, r.y, r.z, r.w], [0.5, 0.5, -0.5, 0.5], atol=1e-6)
    with_joints = convert.body_transforms(result, _header(), joint_names=JOINT_NAMES)
    assert [t.child_frame_id for t in with_joints] == ["body_bk1", "pelvis_bk1", "head_bk1"]
    assert with_joints[2].transform.translation.y == pytest.approx(0.5 - 0.6)


def test_markers_one_mesh_and_one_label_per_person_after_deleteall():
    result = _result([make_human(track_id="ba1"), make_human(track_id="bb2", pelvis=(-1, 0, 5))])
    markers = convert.markers_from_frame(result, _header(), BOX_FACES).markers
    assert markers[0].action == Marker.DELETEALL
    meshes = [m for m in markers if m.type == Marker.TRIANGLE_LIST]
    labels = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    assert len(meshes) == 2 and len(labels) == 2
    assert len(meshes[0].points) == 3 * len(BOX_FACES)
    assert meshes[1].points[0].z == pytest.approx(5 - 0.25)
    assert len({m.id for m in markers[1:]}) == 4 and all(
        m.header.frame_id == "cam_optical" for m in markers
    )
    assert labels[0].text.startswith("ba1 1.75 m") and "3.0 m" in labels[0].text


def _info(k, width=320, height=240):
    return SimpleNamespace(k=k, width=width, height=height)


def test_camera_info_checks():
    np.testing.assert_allclose(convert.camera_info_to_K(_info(K.ravel()), (240, 320)), K)
    with pytest.raises(InputError, match="uncalibrated"):
        convert.camera_info_to_K(_info([0.0] * 9), (240, 320))
    with pytest.raises(InputError, match="non-finite"):
        convert.camera_info_to_K(_info([np.nan] + [1.0] * 8), (240, 320))
    with pytest.raises(InputError, match="640x480 != image size 320x240"):
        convert.camera_info_to_K(_info(K.ravel(), 640, 480), (240, 320))
