"""TF broadcasting with graceful fallbacks.

1. ``tf2_ros.TransformBroadcaster`` when importable (every real ROS install).
2. Otherwise, when ``tf2_msgs`` is importable, a publisher of ``tf2_msgs/TFMessage`` on ``/tf``
   with the QoS tf2_ros uses (reliable, volatile, keep-last 100): wire-identical for every TF
   listener.
3. Otherwise None: the node logs once that no TF is published (meshes and markers still are).

Both broadcasters keep their publisher in ``pub_tf`` (tf2_ros's attribute name), which the node
destroys on cleanup: ``tf_publisher``.
"""

from __future__ import annotations

TF_TOPIC = "/tf"
TF_QOS_DEPTH = 100


class TopicTransformBroadcaster:
    """Minimal stand-in for ``tf2_ros.TransformBroadcaster``: ``sendTransform`` publishes one
    TFMessage."""

    def __init__(self, node):
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        self._message_type = TFMessage
        qos = QoSProfile(
            depth=TF_QOS_DEPTH,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        self.pub_tf = node.create_publisher(TFMessage, TF_TOPIC, qos)

    def sendTransform(self, transform) -> None:  # noqa: N802 - tf2_ros's name
        transforms = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        self.pub_tf.publish(self._message_type(transforms=transforms))


def tf_publisher(broadcaster):
    """The ``/tf`` publisher of a broadcaster made by ``make_transform_broadcaster`` (None for
    None)."""
    return getattr(broadcaster, "pub_tf", None)


def make_transform_broadcaster(node):
    """Returns (broadcaster or None, kind) with kind in ``"tf2_ros"``, ``"topic"``, ``"none"``."""
    try:
        from tf2_ros import TransformBroadcaster
    except ImportError:
        TransformBroadcaster = None  # noqa: N806
    if TransformBroadcaster is not None:
        return TransformBroadcaster(node), "tf2_ros"
    try:
        return TopicTransformBroadcaster(node), "topic"
    except ImportError:
        return None, "none"
