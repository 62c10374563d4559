"""Pair each image with its CameraInfo by stamp, and each colour frame with its depth image
(``DepthJoiner``).

``message_filters.ApproximateTimeSynchronizer`` is used when importable and no cached CameraInfo is
wanted. Otherwise ``StampPairer`` (below, pure Python) does the same job and can also pair an image
with the last CameraInfo received when none matches its stamp (``input.camera_info_cache``: drivers
that latch camera_info or publish it slower than the images).

StampPairer rules (approximate-time, newest first):
    * an arriving message pairs with the buffered partner of nearest stamp if ``|dt| <= slop``;
      that partner and every older buffered message of its topic are then dropped (they can no
      longer pair in order);
    * with ``use_cached``, an image with no partner in the buffer pairs at once with the newest
      CameraInfo seen so far (if any); a CameraInfo of the same stamp arriving later is then just
      cached;
    * otherwise the message waits in a bounded buffer (``queue_size`` per topic, oldest evicted).
"""

from __future__ import annotations

import threading
import time
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
        self,
        callback: Callable[[Any, Any], None],
        slop_s: float,
        queue_size: int,
        use_cached: bool = False,
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
        """Remove and return the nearest-stamp message within slop (and drop all older ones), or
        None."""
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


class DepthJoiner:
    """Joins each colour frame with the registered depth image of its stamp, waiting briefly for
    late depth.

    Depth drivers publish on their own topic, usually just after the colour image, and large
    messages that were lost and re-sent arrive out of order: looking the depth up only when the
    colour frame arrives misses it. So a colour frame (an image/CameraInfo pair) whose depth has
    not come yet is held for up to ``wait_s`` (wall clock); whichever comes second completes the
    frame.

    Rules:
        * ``add_frame``: a buffered depth within ``slop_s`` of the frame's stamp -> emitted at once
          with it; else the frame waits (``wait_s`` = 0: emitted at once without depth).
        * ``add_depth``: the depth is buffered (newest ``size`` kept); a waiting frame within the
          slop is emitted with it, and waiting frames older than that one are dropped (counted in
          ``dropped``: the node keeps only the latest frame anyway).
        * ``flush`` (call it periodically): the newest frame whose wait is over is emitted without
          depth (older ones are dropped).

    Args:
        emit: called as ``emit(frame, depth_msg_or_None)`` on the thread that completed the frame.
        slop_s: max |stamp difference| of a colour frame and its depth image, seconds.
        wait_s: how long a frame waits for its depth, seconds.
        size: depth messages and waiting frames kept.
        clock: monotonic time source in seconds (tests pass a fake one).
    """

    def __init__(self, emit: Callable[[Any, Any], None], slop_s: float, wait_s: float,
                 size: int = 10, clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self._emit = emit
        self.slop_ns = int(round(slop_s * 1e9))
        self.wait_s = wait_s
        self._clock = clock
        self._depths: deque = deque(maxlen=size)
        self._waiting: deque = deque(maxlen=size)  # (stamp_ns, frame, deadline_s), oldest first
        self._lock = threading.Lock()
        self.with_depth = 0
        self.without_depth = 0
        self.dropped = 0

    def add_frame(self, t_ns: int, frame: Any) -> None:
        with self._lock:
            depth = self._nearest(self._depths, t_ns, key=stamp_ns)
            if depth is None and self.wait_s > 0:
                if len(self._waiting) == self._waiting.maxlen:
                    self.dropped += 1
                self._waiting.append((t_ns, frame, self._clock() + self.wait_s))
                return
        self._complete(frame, depth)

    def add_depth(self, depth_msg: Any) -> None:
        with self._lock:
            self._depths.append(depth_msg)
            waiting = self._nearest(self._waiting, stamp_ns(depth_msg), key=lambda w: w[0])
            if waiting is None:
                return
            while self._waiting[0] is not waiting:  # older frames: stale now
                self._waiting.popleft()
                self.dropped += 1
            self._waiting.popleft()
        self._complete(waiting[1], depth_msg)

    def flush(self) -> None:
        now = self._clock()
        expired = None
        with self._lock:
            while self._waiting and self._waiting[0][2] <= now:
                if expired is not None:
                    self.dropped += 1
                expired = self._waiting.popleft()
        if expired is not None:
            self._complete(expired[1], None)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _complete(self, frame: Any, depth_msg: Any) -> None:
        if depth_msg is None:
            self.without_depth += 1
        else:
            self.with_depth += 1
        self._emit(frame, depth_msg)

    def _nearest(self, items, t_ns: int, key) -> Any:
        best = min(items, key=lambda item: abs(key(item) - t_ns), default=None)
        return best if best is not None and abs(key(best) - t_ns) <= self.slop_ns else None


@dataclass
class Pairing:
    """What ``create_pairing`` made: subscriptions to destroy on deactivation, and who pairs."""

    subscriptions: list = field(default_factory=list)
    pairer: StampPairer | None = None  # None when message_filters pairs
    synchronizer: Any = None  # message_filters.ApproximateTimeSynchronizer, kept alive here


def create_pairing(
    node, image_type, image_topic: str, info_topic: str, qos, config, callback
) -> Pairing:
    """Subscribe to image + camera_info and call ``callback(image_msg, info_msg)`` per pair.

    Args:
        node: the rclpy node that owns the subscriptions.
        image_type: sensor_msgs Image or CompressedImage.
        image_topic, info_topic: topic names (relative names resolve in the node's namespace).
        qos: (image QoS, camera_info QoS) profiles.
        config: NodeConfig (``input_sync_slop_s``, ``input_sync_queue_size``,
            ``input_camera_info_cache``).
        callback: called on the executor thread with each pair.

    Returns:
        Pairing with the rclpy subscriptions and the StampPairer or message_filters synchronizer.
    """
    from sensor_msgs.msg import CameraInfo

    image_qos, info_qos = qos
    try:
        import message_filters
    except ImportError:
        message_filters = None
    if message_filters is not None and not config.input_camera_info_cache:
        filters = [
            message_filters.Subscriber(node, image_type, image_topic, qos_profile=image_qos),
            message_filters.Subscriber(node, CameraInfo, info_topic, qos_profile=info_qos),
        ]
        sync = message_filters.ApproximateTimeSynchronizer(
            filters, config.input_sync_queue_size, config.input_sync_slop_s
        )
        sync.registerCallback(callback)
        return Pairing([f.sub for f in filters], None, sync)
    pairer = StampPairer(
        callback,
        config.input_sync_slop_s,
        config.input_sync_queue_size,
        config.input_camera_info_cache,
    )
    subscriptions = [
        node.create_subscription(image_type, image_topic, pairer.add_image, image_qos),
        node.create_subscription(CameraInfo, info_topic, pairer.add_info, info_qos),
    ]
    return Pairing(subscriptions, pairer)
