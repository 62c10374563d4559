"""MahmrNode with real rclpy and DDS, in-process: publish Image + CameraInfo, assert on what comes
out.

Steps of every test: start the node (estimator ``test_known`` from conftest, DTO off) and a harness
node in one private rclpy context; wait until publishers and subscriptions have matched; publish;
spin both nodes with ``spin_once`` until the expected message arrives (or a timeout fails the
test). Run inside the loopback network namespace (``make test``) so no DDS traffic leaves the
machine.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from mahmr_ros.msg import MeshTopology  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from .harness import FRAME, LATCHED, RELIABLE, H, K, W, camera_info  # noqa: E402
from .known import BOX_FACES, make_human  # noqa: E402

pytestmark = pytest.mark.ros


def test_meshes_keep_stamp_frame_and_contents(harness, known):
    h = harness()
    h.send(frame=7, stamp_s=100.25)
    h.wait_for(lambda: h.meshes)
    msg = h.meshes[0]
    assert msg.header.frame_id == FRAME
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (100, 250_000_000)
    assert msg.body_model == "test_box" and not msg.k_estimated
    np.testing.assert_allclose(msg.k, K)
    np.testing.assert_allclose(
        known.seen_K[0].ravel(), K
    )  # the CameraInfo K reached the estimator
    assert known.seen_frames == [7]
    (mesh,) = msg.humans
    assert len(mesh.vertices) == 8 * 3 and len(mesh.joints) == 2 * 3 and len(mesh.pose) == 72
    assert mesh.id and mesh.id[0].isalpha()  # the pipeline's tracker gave a REP-155 style id
    p = mesh.pelvis.position
    np.testing.assert_allclose([p.x, p.y, p.z], [0.2, -0.1, 3.0], atol=1e-6)
    assert msg.processing_ms > 0


def test_topology_is_latched_for_a_late_subscriber(harness):
    h = harness()
    h.spin(0.2)
    late = h.record(MeshTopology, "/humans/meshes/topology", LATCHED)
    h.wait_for(lambda: late)
    h.spin(0.2)
    assert len(late) == 1
    assert late[0].body_model == "test_box" and late[0].num_vertices == 8
    np.testing.assert_array_equal(np.asarray(late[0].faces).reshape(-1, 3), BOX_FACES)
    assert list(late[0].joint_names) == ["pelvis", "head"]


def _record_tf(h) -> list:
    """The ``/tf`` messages the harness ``h`` receives from now on, once the node's broadcaster has
    matched (skips the test without tf2_msgs)."""
    tf2_msgs = pytest.importorskip(
        "tf2_msgs.msg",
        reason="needs tf2_msgs: the test fixture (MAHMR_TEST_FIXTURES=1, make test) or ROS",
    )
    tf_msgs = h.record(
        tf2_msgs.TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    )
    h.wait_for(lambda: h.node.tf_broadcaster.pub_tf.get_subscription_count() > 0)
    return tf_msgs


def test_tf_body_frame_for_a_known_pelvis_pose(harness, known):
    known.humans = [make_human(pelvis=(0.4, -0.2, 2.5))]
    h = harness()
    tf_msgs = _record_tf(h)
    h.send(frame=1, stamp_s=42.5)
    h.wait_for(lambda: h.meshes and tf_msgs)
    body_id = h.meshes[0].humans[0].id
    (tf,) = tf_msgs[0].transforms
    assert tf.child_frame_id == f"body_{body_id}"
    assert tf.header.frame_id == FRAME and (tf.header.stamp.sec, tf.header.stamp.nanosec) == (
        42,
        500_000_000,
    )
    t, r = tf.transform.translation, tf.transform.rotation
    np.testing.assert_allclose([t.x, t.y, t.z], [0.4, -0.2, 2.5], atol=1e-6)
    # Upright, facing the camera: x_body = -z_cam, y_body = +x_cam, z_body = -y_cam -> (0.5, 0.5,
    # -0.5, 0.5).
    np.testing.assert_allclose([r.x, r.y, r.z, r.w], [0.5, 0.5, -0.5, 0.5], atol=1e-6)


def test_floor_frame_and_diagnostics_for_a_known_floor(harness, known):
    """The estimator's floor becomes the ``humans_floor`` TF frame (REP-103: z up, x forward along
    the floor) and diagnostics values; checked against a hand-worked pose: camera 1.5 m above the
    floor, pitched 30 deg down."""
    from mahmr_ros.ros.diagnostics import node_status
    from mahmr_ros.types import FloorEstimate

    known.floor = FloorEstimate(1.5, np.radians(30.0), 0.04, np.radians(1.0), people=5, frames=3)
    h = harness()
    tf_msgs = _record_tf(h)
    h.send(frame=1, stamp_s=7.0)
    h.wait_for(lambda: h.meshes and tf_msgs)
    floor_tf = {t.child_frame_id: t for t in tf_msgs[0].transforms}["humans_floor"]
    assert floor_tf.header.frame_id == FRAME and floor_tf.header.stamp.sec == 7
    t, q = floor_tf.transform.translation, floor_tf.transform.rotation
    # up in the camera frame (y down, z forward) is (0, -cos 30, -sin 30); the floor is 1.5 m along
    # -up
    np.testing.assert_allclose(
        [t.x, t.y, t.z], [0.0, 1.5 * np.cos(np.radians(30)), 0.75], atol=1e-6
    )
    R = quat_to_rotmat_xyzw([q.x, q.y, q.z, q.w])
    np.testing.assert_allclose(
        R[:, 2], [0.0, -np.cos(np.radians(30)), -0.5], atol=1e-6
    )  # floor z = up
    np.testing.assert_allclose(R[:, 1], [-1.0, 0.0, 0.0], atol=1e-6)  # floor y = left = camera -x
    _, _, values = node_status(h.node)
    assert values["floor.camera_height_m"] == "1.500" and values["floor.pitch_deg"] == "30.00"
    assert values["floor.people"] == "5" and values["floor.source"] == "estimated"


def quat_to_rotmat_xyzw(q):
    """Hand-written unit quaternion (x, y, z, w) -> rotation matrix (independent of the code under
    test)."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def test_markers_only_while_subscribed(harness):
    h = harness()
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(
        lambda: h.meshes and h.node.worker.wait_idle(0.0)
    )  # frame 1 fully published (no race)
    assert h.node.counts["markers"] == 0
    markers = h.record(MarkerArray, "/mahmr/markers", RELIABLE)
    h.wait_for(lambda: h.node.markers_pub.get_subscription_count() > 0)
    h.send(frame=2, stamp_s=2.0)
    h.wait_for(lambda: markers)
    assert h.node.counts["markers"] == 1
    meshes = [m for m in markers[0].markers if m.type == Marker.TRIANGLE_LIST]
    assert len(meshes) == 1 and len(meshes[0].points) == 3 * len(BOX_FACES)
    assert meshes[0].header.frame_id == FRAME and meshes[0].header.stamp.sec == 2


def _bad_image(encoding="bgr8", width=W, height=H, data=None):
    msg = Image(width=width, height=height, encoding=encoding, step=width * 3)
    msg.data = bytes(width * height * 3) if data is None else data
    return msg


@pytest.mark.parametrize(
    "image_msg, info_msg",
    [
        (None, camera_info(k=[0.0] * 9)),  # all-zero K
        (None, camera_info(k=[np.nan] + K[1:])),  # non-finite K
        (None, camera_info(width=640, height=480)),  # CameraInfo size != image size
        (_bad_image(encoding="32FC1"), None),  # unsupported encoding
        (_bad_image(width=0, height=0, data=b""), camera_info(width=0, height=0)),  # empty image
    ],
    ids=["zero_K", "nan_K", "size_mismatch", "encoding", "empty"],
)
def test_bad_inputs_are_skipped_and_the_node_stays_alive(harness, known, image_msg, info_msg):
    h = harness()
    h.send(frame=3, stamp_s=5.0, image_msg=image_msg, info_msg=info_msg)
    h.wait_for(lambda: h.node.counts["skipped"] == 1)
    assert h.meshes == [] and known.seen_frames == []
    h.send(frame=4, stamp_s=6.0)
    h.wait_for(lambda: h.meshes)
    assert h.meshes[0].header.stamp.sec == 6 and known.seen_frames == [4]
    assert h.node.worker.alive and h.node.counts["failed"] == 0


def test_latest_frame_policy_drops_stale_frames_under_a_burst(harness, known):
    known.delay_s = 0.25
    h = harness()
    for frame in range(1, 9):
        h.send(frame=frame, stamp_s=10.0 + frame)
        h.spin(0.02)
    h.wait_for(lambda: h.node.counts["received"] == 8)
    h.wait_for(lambda: h.node.worker.wait_idle(0.0) and len(h.meshes) == len(known.seen_frames))
    seen = known.seen_frames
    assert seen[-1] == 8  # the newest frame is always processed
    assert len(seen) < 8 and seen == sorted(seen)
    assert h.node.dropped_frames == 8 - len(seen)
    assert [m.header.stamp.sec for m in h.meshes] == [10 + f for f in seen]


def test_without_camera_info_the_estimator_chooses_k(harness, known):
    h = harness(**{"input.use_camera_info": False})
    h.send(frame=5, stamp_s=3.0, info=False)
    h.wait_for(lambda: h.meshes)
    assert h.meshes[0].k_estimated and known.seen_K == [None]
    assert h.meshes[0].k[0] == pytest.approx(400.0)


def test_cached_camera_info_serves_images_without_a_matching_stamp(harness, known):
    h = harness(**{"input.camera_info_cache": True})
    h.info_pub.publish(camera_info())  # stamp 0: a latched, once-only CameraInfo
    h.wait_for(lambda: h.node.pairing.pairer.last_info is not None)
    h.send(frame=6, stamp_s=50.0, info=False)
    h.wait_for(lambda: h.meshes)
    assert not h.meshes[0].k_estimated
    np.testing.assert_allclose(h.meshes[0].k, K)


def test_compressed_input_and_vertices_off(harness, known):
    h = harness(**{"input.compressed": True, "publish.vertices": False})
    ok, png = cv2.imencode(".png", np.full((H, W, 3), 9, np.uint8))
    assert ok
    h.send(frame=0, stamp_s=7.0, image_msg=CompressedImage(format="png", data=png.tobytes()))
    h.wait_for(lambda: h.meshes)
    assert known.seen_frames == [9]
    assert len(h.meshes[0].humans[0].vertices) == 0 and len(h.meshes[0].humans[0].joints) == 6


def test_publish_parameters_change_at_runtime_and_bad_values_are_rejected(harness):
    h = harness()
    result = h.node.set_parameters([Parameter("publish.vertices", value=False)])[0]
    assert result.successful and not h.node.config.publish_vertices
    result = h.node.set_parameters([Parameter("publish.markers_max_rate_hz", value=-1.0)])[0]
    assert not result.successful
