"""The node's input subscriptions: image (+ camera_info, + registered depth), with the QoS they
need.

``input.image_qos``:
    * ``sensor_data`` / ``reliable``: subscribe at once with that reliability.
    * ``auto`` (default): subscribe to a topic once it has a publisher, reliable when all its
      publishers are (lost fragments of large images are then re-sent, see ``dds.py``), else best
      effort (which hears both). A best-effort publisher that joins later is not heard by a
      reliable subscription: ``check_qos`` (called once a second) subscribes again with best effort
      then.

The image topic is resolved like image_transport does (remaps apply to the base topic ``image``,
then ``/compressed`` is appended for ``input.compressed``), and ``input.intrinsics`` auto becomes
``p`` when that base name contains ``rect``.
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from mahmr_ros.ros.sync import DepthJoiner, Pairing, create_pairing, stamp_ns

DISCOVERY_POLL_S = 0.05  # input.image_qos auto: how often to look for the input topics' publishers
DEPTH_FLUSH_S = (
    0.01  # how often frames waiting for their depth image are checked for the end of the wait
)


class NodeInputs:
    """Subscriptions, pairing and depth joining of one activation of the node (``close`` undoes
    them).

    Args:
        node: the rclpy node that owns the subscriptions and timers.
        config: NodeConfig (``input.*``, ``dto_mode``).
        on_pair: called as ``on_pair(image_msg, info_msg_or_None)`` for each image on the executor
            thread.
        submit: called as ``submit((image_msg, info_msg), depth_msg_or_None)`` when a frame is
            complete (``hand_over`` passes frames through, or through the DepthJoiner for
            ``dto.mode`` rgbd).
    """

    def __init__(self, node, config, on_pair: Callable, submit: Callable):
        self.node = node
        self.config = config
        self._on_pair = on_pair
        self._submit = submit
        base = node.resolve_topic_name("image")
        self.image_topic = base + "/compressed" if config.input_compressed else base
        self.intrinsics = config.input_intrinsics
        if self.intrinsics == "auto":
            self.intrinsics = "p" if "rect" in base.rsplit("/", 1)[-1] else "k"
        self.pairing: Pairing | None = None
        self.depth_joiner: DepthJoiner | None = None
        self.depth_sub = None
        self._depth_timer = self._discovery_timer = None
        if config.dto_mode == "rgbd":
            self.depth_joiner = DepthJoiner(submit, config.input_depth_slop_s,
                                            config.input_depth_wait_s,
                                            size=2 * config.input_qos_depth)  # fmt: skip
            self._depth_timer = node.create_timer(DEPTH_FLUSH_S, self.depth_joiner.flush)
        self.connect()
        if not self.connected:
            node.get_logger().info(f"[mahmr] waiting for a publisher on {self.image_topic} "
                                   "(input.image_qos auto takes its reliability)")  # fmt: skip
            self._discovery_timer = node.create_timer(DISCOVERY_POLL_S, self.connect)

    @property
    def connected(self) -> bool:
        return self.pairing is not None and (
            self.depth_joiner is None or self.depth_sub is not None
        )

    def hand_over(self, image_msg, info_msg) -> None:
        """An image (and its CameraInfo) the node accepted: to the DepthJoiner (rgbd), else on as
        it is."""
        if self.depth_joiner is not None:
            self.depth_joiner.add_frame(stamp_ns(image_msg), (image_msg, info_msg))
        else:
            self._submit((image_msg, info_msg), None)

    def connect(self) -> None:
        """Create the subscriptions whose QoS can be chosen now (see ``qos_for``)."""
        node, cfg = self.node, self.config
        image_qos = self.qos_for(self.image_topic)
        if self.pairing is None and image_qos is not None:
            image_type = CompressedImage if cfg.input_compressed else Image
            if not cfg.input_use_camera_info:
                on_image = lambda msg: self._on_pair(msg, None)  # noqa: E731
                self.pairing = Pairing([node.create_subscription(image_type, self.image_topic,
                                                                 on_image,
                                                                 image_qos)])  # fmt: skip
            else:
                info_topic = node.resolve_topic_name("camera_info")
                qos = (
                    image_qos,
                    self.qos_for(info_topic) or self._qos(ReliabilityPolicy.BEST_EFFORT),
                )
                self.pairing = create_pairing(node, image_type, self.image_topic, info_topic, qos,
                                              cfg, self._on_pair)  # fmt: skip
        if self.depth_joiner is not None and self.depth_sub is None:
            depth_qos = self.qos_for(node.resolve_topic_name("depth"))
            if depth_qos is not None:
                self.depth_sub = node.create_subscription(
                    Image, "depth", self.depth_joiner.add_depth, depth_qos
                )
        if self.connected and self._discovery_timer is not None:
            node.destroy_timer(self._discovery_timer)
            self._discovery_timer = None

    def close(self) -> None:
        """Destroy every subscription and timer."""
        subscriptions = list(self.pairing.subscriptions) if self.pairing else []
        for subscription in [*subscriptions, self.depth_sub]:
            if subscription is not None:
                self.node.destroy_subscription(subscription)
        for timer in (self._discovery_timer, self._depth_timer):
            if timer is not None:
                self.node.destroy_timer(timer)
        self.pairing = self.depth_joiner = self.depth_sub = None
        self._discovery_timer = self._depth_timer = None

    def qos_for(self, topic: str) -> QoSProfile | None:
        """Input QoS for ``topic`` per ``input.image_qos``; auto: reliable when every publisher of
        ``topic`` offers reliable, best effort when one does not, None while no publisher is
        known."""
        choice = self.config.input_image_qos
        if choice != "auto":
            reliable = choice == "reliable"
            return self._qos(
                ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
            )
        offered = [
            info.qos_profile.reliability for info in self.node.get_publishers_info_by_topic(topic)
        ]
        if not offered:
            return None
        reliable = all(r == ReliabilityPolicy.RELIABLE for r in offered)
        return self._qos(ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)

    def check_qos(self) -> None:
        """``input.image_qos`` auto: subscribe again (best effort) when a best-effort publisher
        joined a topic this node subscribes to reliably (it would not be heard)."""
        if self.config.input_image_qos != "auto":
            return
        again = False
        if self.pairing is not None and any(
            map(self._misses_a_publisher, self.pairing.subscriptions)
        ):
            for subscription in self.pairing.subscriptions:
                self.node.destroy_subscription(subscription)
            self.pairing, again = None, True
        if self.depth_sub is not None and self._misses_a_publisher(self.depth_sub):
            self.node.destroy_subscription(self.depth_sub)
            self.depth_sub, again = None, True
        if again:
            self.node.get_logger().info("[mahmr] a best-effort publisher joined an input topic: "
                                        "subscribing again with best effort (input.image_qos "
                                        "auto)")  # fmt: skip
            self.connect()

    def status(self) -> str:
        """What the image input is doing, for diagnostics: its topic and QoS, or why nothing
        arrives."""
        if self.pairing is None:
            return f"waiting for a publisher on {self.image_topic}: check the image remap"
        subscription = self.pairing.subscriptions[0]
        publishers = subscription.get_publisher_count()
        reliability = subscription.qos_profile.reliability.name.lower()
        hint = "" if publishers else ": no publisher, check the image remap"
        return f"{subscription.topic_name} ({reliability}, {publishers} publisher(s){hint})"

    def _qos(self, reliability: ReliabilityPolicy) -> QoSProfile:
        depth = self.config.input_qos_depth
        if reliability == ReliabilityPolicy.RELIABLE:
            return QoSProfile(depth=depth, reliability=reliability)
        sensor = qos_profile_sensor_data
        return QoSProfile(depth=depth, history=sensor.history, reliability=sensor.reliability,
                          durability=sensor.durability)  # fmt: skip

    def _misses_a_publisher(self, subscription) -> bool:
        if subscription.qos_profile.reliability != ReliabilityPolicy.RELIABLE:
            return False
        offered = self.node.get_publishers_info_by_topic(subscription.topic_name)
        return any(info.qos_profile.reliability != ReliabilityPolicy.RELIABLE for info in offered)
