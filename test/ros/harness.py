"""The in-process test harness for MahmrNode: the node under test plus a peer node in one rclpy
context.

Fixtures ``context`` and ``harness`` (conftest.py) build these; tests import the constants and
helpers.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from mahmr_ros.msg import HumanMeshArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from mahmr_ros.ros.image import bgr_to_image_msg
from mahmr_ros.ros.node import MahmrNode

W, H = 320, 240
K = [500.0, 0.0, 160.0, 0.0, 500.0, 120.0, 0.0, 0.0, 1.0]
FRAME = "camera_color_optical_frame"
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# /rosout keeps the last 1000 lines for late subscribers (transient local), so no log line is
# missed.
ROSOUT = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def make_context():
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    return ctx


class Harness:
    """The node under test plus a peer node that publishes inputs and records outputs."""

    def __init__(self, context, image_topic: str = "image", **params):
        values = {
            "estimator": "test_known",
            "dto.mode": "off",
            "publish.markers_max_rate_hz": 0.0,
            **params,
        }
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        remap = ["--ros-args", "-r", f"image:={image_topic}"] if image_topic != "image" else None
        self.node = MahmrNode(context=context, parameter_overrides=overrides, cli_args=remap)
        self.peer = rclpy.create_node("harness", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self.logger = RecordingLogger(self.node.get_logger())
        self.node.get_logger = lambda: (
            self.logger
        )  # what the node logs from now on is kept for asserts
        compressed = params.get("input.compressed")
        image_type = CompressedImage if compressed else Image
        self.image_pub = self.peer.create_publisher(
            image_type, image_topic + "/compressed" if compressed else image_topic, RELIABLE
        )
        self.info_pub = self.peer.create_publisher(CameraInfo, "camera_info", RELIABLE)
        self.meshes = self.record(HumanMeshArray, "/humans/meshes", RELIABLE)
        self.wait_for(lambda: self.image_pub.get_subscription_count() and self.meshes_matched())

    def meshes_matched(self) -> bool:
        return self.node.meshes_pub.get_subscription_count() > 0

    def record(self, msg_type, topic, qos) -> list:
        received = []
        self.peer.create_subscription(msg_type, topic, received.append, qos)
        return received

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def wait_for(self, predicate, timeout_s: float = 10.0) -> None:
        end = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < end, "timed out waiting for the node"
            self.executor.spin_once(timeout_sec=0.01)

    def send(
        self, frame: int, stamp_s: float, info=True, image_msg=None, info_msg=None, frame_id=FRAME
    ):
        header = header_at(stamp_s, frame_id)
        if image_msg is None:
            image_msg = bgr_to_image_msg(np.full((H, W, 3), frame, np.uint8), header)
        image_msg.header = header
        self.image_pub.publish(image_msg)
        if info:
            info_msg = info_msg or camera_info()
            info_msg.header = header
            self.info_pub.publish(info_msg)

    def warnings(self, fragment: str = "") -> list[str]:
        """Warnings (and errors) the node logged since the harness started, containing
        ``fragment``."""
        return [msg for level, msg in self.logger.lines if level != "info" and fragment in msg]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.peer.destroy_node()


class RecordingLogger:
    """The node's rclpy logger, also keeping each line: (level, message).

    /rosout would be the outside view, but rclpy finalizes a destroyed node lazily and the next
    node of the same name then loses its /rosout publisher (rcl.logging_rosout "Publisher already
    registered"), so tests that make many ``mahmr`` nodes in a row read the lines here.
    """

    def __init__(self, logger):
        self._logger = logger
        self.lines: list[tuple[str, str]] = []

    def _log(self, level: str, message: str, **kwargs) -> None:
        self.lines.append((level, message))
        getattr(self._logger, level)(message, **kwargs)

    def debug(self, message, **kwargs):
        self._log("debug", message, **kwargs)

    def info(self, message, **kwargs):
        self._log("info", message, **kwargs)

    def warning(self, message, **kwargs):
        self._log("warning", message, **kwargs)

    warn = warning

    def error(self, message, **kwargs):
        self._log("error", message, **kwargs)

    def fatal(self, message, **kwargs):
        self._log("fatal", message, **kwargs)


def header_at(stamp_s: float, frame_id: str = FRAME) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec = int(stamp_s)
    header.stamp.nanosec = int(round((stamp_s - int(stamp_s)) * 1e9))
    return header


def camera_info(k=K, width=W, height=H) -> CameraInfo:
    info = CameraInfo(width=width, height=height)
    info.k = [float(v) for v in k]
    return info
