"""Pair each image with its CameraInfo by stamp.

``message_filters.ApproximateTimeSynchronizer`` is used when importable and no cached CameraInfo is wanted.
Otherwise ``StampPairer`` (below, pure Python) does the same job and can also pair an image with the last
CameraInfo received when none matches its stamp (``input.camera_info_cache``: drivers that latch
camera_info or publish it slower than the images).

StampPairer rules (approximate-time, newest first):
    * an arriving message pairs with the buffered partner of nearest stamp if ``|dt| <= slop``; that partner
      and every older buffered message of its topic are then dropped (they can no longer pair in order);
    * with ``use_cached``, an image with no partner in the buffer pairs at once with the newest CameraInfo
      seen so far (if any); a CameraInfo of the same stamp arriving later is then just cached;
    * otherwise the message waits in a bounded buffer (``queue_size`` per topic, oldest evicted).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def stamp_ns(msg: Any) -> int:
    """``header.stamp`` of a message in integer nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class StampPairer:
    """Approximate-time pairing of images and CameraInfos (see the module docstring).

    Args:
        callback: called as ``callback(image_msg, info_msg)`` for each pair, on the adding thread.
        slop_s: max stamp difference of a pair, seconds.
        queue_size: messages buffered per topic while waiting for a partner.
        use_cached: pair an unmatched image with the newest CameraInfo seen.
    """

    def __init__(
        self, callback: Callable[[Any, Any], None], slop_s: float, queue_size: int, use_cached: bool = False
    ):
        self._callback = callback
        self._slop_ns = int(round(slop_s * 1e9))
        self._images: deque = deque(maxlen=queue_size)
        self._infos: deque = deque(maxlen=queue_size)
        self.use_cached = use_cached
        self.last_info: Any = None
        self.pairs = 0
        self.cached_pairs = 0

    def add_image(self, image_msg: Any) -> None:
        info = self._take(self._infos, stamp_ns(image_msg))
        if info is None and self.use_cached and self.last_info is not None:
            info = self.last_info
            self.cached_pairs += 1
        if info is None:
            self._images.append(image_msg)
            return
        self._emit(image_msg, info)

    def add_info(self, info_msg: Any) -> None:
        self.last_info = info_msg
        image = self._take(self._images, stamp_ns(info_msg))
        if image is None:
            self._infos.append(info_msg)
            return
        self._emit(image, info_msg)

    @property
    def waiting_images(self) -> int:
        return len(self._images)

    def _emit(self, image_msg: Any, info_msg: Any) -> None:
        self.pairs += 1
        self._callback(image_msg, info_msg)

    def _take(self, buffer: deque, t_ns: int) -> Any:
        """Remove and return the nearest-stamp message within slop (and drop all older ones), or None."""
        best, best_dt = None, None
        for index, msg in enumerate(buffer):
            dt = abs(stamp_ns(msg) - t_ns)
            if dt <= self._slop_ns and (best_dt is None or dt < best_dt):
                best, best_dt = index, dt
        if best is None:
            return None
        for _ in range(best):
            buffer.popleft()
        return buffer.popleft()


class DepthCache:
    """The last few depth images, looked up by the colour image's stamp (depth drivers publish separately).

    Args:
        slop_s: max |stamp difference| to accept a depth image for a colour image.
        size: depth messages kept (oldest dropped).
    """

    def __init__(self, slop_s: float = 0.05, size: int = 10):
        self.slop_ns = int(slop_s * 1e9)
        self._msgs: deque = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, depth_msg: Any) -> None:
        with self._lock:
            self._msgs.append(depth_msg)

    def take(self, t_ns: int) -> Any:
        """The depth message closest in time to ``t_ns`` within the slop, or None."""
        with self._lock:
            best = min(self._msgs, key=lambda m: abs(stamp_ns(m) - t_ns), default=None)
        if best is None or abs(stamp_ns(best) - t_ns) > self.slop_ns:
            return None
        return best


@dataclass
class Pairing:
    """What ``create_pairing`` made: subscriptions to destroy on deactivation, and who pairs."""

    subscriptions: list = field(default_factory=list)
    pairer: StampPairer | None = None  # None when message_filters pairs
    synchronizer: Any = None  # message_filters.ApproximateTimeSynchronizer, kept alive here


def create_pairing(node, image_type, image_topic: str, info_topic: str, qos, config, callback):
    """Subscribe to image + camera_info and call ``callback(image_msg, info_msg)`` per pair.

    Args:
        node: the rclpy node that owns the subscriptions.
        image_type: sensor_msgs Image or CompressedImage.
        image_topic, info_topic: topic names (relative names resolve in the node's namespace).
        qos: QoS profile of both subscriptions.
        config: NodeConfig (``input_sync_slop_s``, ``input_sync_queue_size``, ``input_camera_info_cache``).
        callback: called on the executor thread with each pair.

    Returns:
        Pairing with the rclpy subscriptions and the StampPairer or message_filters synchronizer.
    """
    from sensor_msgs.msg import CameraInfo

    try:
        import message_filters
    except ImportError:
        message_filters = None
    if message_filters is not None and not config.input_camera_info_cache:  # pragma: no cover - real ROS
        filters = [
            message_filters.Subscriber(node, image_type, image_topic, qos_profile=qos),
            message_filters.Subscriber(node, CameraInfo, info_topic, qos_profile=qos),
        ]
        sync = message_filters.ApproximateTimeSynchronizer(
            filters, config.input_sync_queue_size, config.input_sync_slop_s
        )
        sync.registerCallback(callback)
        return Pairing([f.sub for f in filters], None, sync)
    pairer = StampPairer(
        callback, config.input_sync_slop_s, config.input_sync_queue_size, config.input_camera_info_cache
    )
    subscriptions = [
        node.create_subscription(image_type, image_topic, pairer.add_image, qos),
        node.create_subscription(CameraInfo, info_topic, pairer.add_info, qos),
    ]
    return Pairing(subscriptions, pairer)
