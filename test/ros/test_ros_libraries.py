"""The node's code paths for ROS libraries a real install has but no registry offers here (issue
12, item 9): ``message_filters`` (image/CameraInfo pairing), ``tf2_ros`` (TF broadcaster),
``diagnostic_updater`` (/diagnostics) and ``cv_bridge`` (image decoding), run against the test-only
stand-ins in ``standins/`` that mirror the upstream APIs, with real rclpy + DDS. The
``ros_libraries`` fixture puts them on the path.
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from .harness import RELIABLE, H, W, camera_info, header_at  # noqa: E402

pytestmark = pytest.mark.ros


def test_message_filters_pairs_image_and_camera_info(ros_libraries, harness, known):
    import message_filters

    h = harness()
    assert isinstance(h.node.pairing.synchronizer, message_filters.ApproximateTimeSynchronizer)
    assert h.node.pairing.pairer is None
    h.send(frame=7, stamp_s=20.0, info=False)
    h.spin(0.1)
    assert h.meshes == []  # no CameraInfo of that stamp yet
    info = camera_info()
    info.header = header_at(20.005)  # within input.sync_slop_s (20 ms)
    h.info_pub.publish(info)
    h.wait_for(lambda: h.meshes)
    assert known.seen_frames == [7] and h.meshes[0].header.stamp.sec == 20
    h.node.trigger_deactivate()  # the message_filters subscriptions (Subscriber.sub) are destroyed
    h.wait_for(
        lambda: (
            h.image_pub.get_subscription_count() == 0 and h.info_pub.get_subscription_count() == 0
        )
    )


def test_tf2_ros_broadcaster_publishes_body_frames(ros_libraries, harness, known):
    tf2_msgs = pytest.importorskip(
        "tf2_msgs.msg", reason="needs tf2_msgs: the test fixture (make test) or ROS"
    )
    import tf2_ros

    h = harness()
    assert isinstance(h.node.tf_broadcaster, tf2_ros.TransformBroadcaster)
    tf_msgs = h.record(tf2_msgs.TFMessage, "/tf", RELIABLE)
    h.wait_for(lambda: h.node.tf_broadcaster.pub_tf.get_subscription_count() > 0)
    h.send(frame=1, stamp_s=4.0)
    h.wait_for(lambda: h.meshes and tf_msgs)
    assert tf_msgs[0].transforms[0].child_frame_id == f"body_{h.meshes[0].humans[0].id}"


def test_diagnostic_updater_reports_the_node_status(ros_libraries, harness, known):
    import diagnostic_updater

    h = harness()
    assert (
        isinstance(h.node.updater, diagnostic_updater.Updater) and h.node.diagnostics_pub is None
    )
    assert h.node.has_parameter(
        "diagnostic_updater.period"
    )  # declared by the Updater: the node lives on
    diagnostics = h.record(DiagnosticArray, "/diagnostics", RELIABLE)
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.meshes)
    h.wait_for(lambda: any(s.values for d in diagnostics for s in d.status), timeout_s=5.0)
    status = next(s for d in diagnostics for s in d.status if s.values)
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "mahmr: pipeline" and values["estimator"] == "KnownEstimator"
    assert values["published"] == "1" and status.hardware_id == h.node.get_fully_qualified_name()


def test_cv_bridge_decodes_and_its_errors_are_clean_skips(ros_libraries, harness, known):
    import cv_bridge

    calls = cv_bridge.CvBridge.calls
    h = harness()
    h.send(frame=9, stamp_s=1.0)  # bgr8: the bridge converts it
    h.wait_for(lambda: h.meshes)
    assert cv_bridge.CvBridge.calls == calls + 1 and known.seen_frames == [9]
    mono16 = Image(width=W, height=H, encoding="mono16", step=W * 2, data=bytes(W * H * 2))
    h.send(
        frame=0, stamp_s=2.0, image_msg=mono16
    )  # a conversion this bridge refuses (CvBridgeError)
    h.wait_for(lambda: h.node.counts["skipped"] == 1)
    assert h.node.counts["failed"] == 0 and h.warnings("cannot convert")
    h.send(frame=4, stamp_s=3.0)
    h.wait_for(lambda: len(h.meshes) == 2)
    np.testing.assert_array_equal(known.seen_frames, [9, 4])
