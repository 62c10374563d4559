"""Test-only stand-in for ROS 2 ``tf2_ros`` (see ../README.md): ``TransformBroadcaster`` only."""

from __future__ import annotations

from rclpy.qos import QoSProfile
from tf2_msgs.msg import TFMessage


class TransformBroadcaster:
    """Sends transforms on ``/tf`` as one ``tf2_msgs/TFMessage`` each call; the publisher is
    ``pub_tf``."""

    def __init__(self, node, qos=None):
        self.pub_tf = node.create_publisher(
            TFMessage, "/tf", qos if qos is not None else QoSProfile(depth=100)
        )

    def sendTransform(self, transform):  # noqa: N802 - upstream name
        transforms = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        self.pub_tf.publish(TFMessage(transforms=transforms))
