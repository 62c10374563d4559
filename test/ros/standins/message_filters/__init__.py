"""Test-only stand-in for ROS 2 ``message_filters`` (see ../README.md): the API the node uses,
written anew.

``Subscriber`` wraps one rclpy subscription (kept in ``.sub``, as upstream) and forwards each
message to the registered callbacks. ``ApproximateTimeSynchronizer`` keeps the newest
``queue_size`` messages per input and calls back with one message per input once every input has a
message whose stamp is within ``slop`` seconds of the others (the closest set to the newest
message); the matched messages and older ones are dropped.
"""

from __future__ import annotations

import threading


class SimpleFilter:
    """A message source: ``registerCallback(cb, *args)`` -> ``cb(*messages, *args)`` per output."""

    def __init__(self):
        self.callbacks = {}

    def registerCallback(self, cb, *args):  # noqa: N802 - upstream name
        key = len(self.callbacks)
        self.callbacks[key] = (cb, args)
        return key

    def signalMessage(self, *msg):  # noqa: N802 - upstream name
        for cb, args in list(self.callbacks.values()):
            cb(*msg, *args)


class Subscriber(SimpleFilter):
    """``Subscriber(node, msg_type, topic, qos_profile=...)``: an rclpy subscription feeding the
    filters."""

    def __init__(self, node, msg_type, topic, qos_profile=10, **kwargs):
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(
            msg_type, topic, self.signalMessage, qos_profile, **kwargs
        )

    def getTopic(self):  # noqa: N802 - upstream name
        return self.topic


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class ApproximateTimeSynchronizer(SimpleFilter):
    """``ApproximateTimeSynchronizer(fs, queue_size, slop)``: one message per input, within
    ``slop`` s."""

    def __init__(self, fs, queue_size, slop, allow_headerless=False):
        super().__init__()
        self.queue_size = queue_size
        self.slop_ns = int(slop * 1e9)
        self.allow_headerless = allow_headerless
        self.lock = threading.Lock()
        self.queues = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, i) for i, f in enumerate(fs)]

    def add(self, msg, index):
        with self.lock:
            t_ns = _stamp_ns(msg)
            queue = self.queues[index]
            queue[t_ns] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
            chosen = []
            for other, candidates in enumerate(self.queues):
                near = (
                    [s for s in candidates if abs(s - t_ns) <= self.slop_ns]
                    if other != index
                    else [t_ns]
                )
                if not near:
                    return
                chosen.append(min(near, key=lambda s: abs(s - t_ns)))
            if max(chosen) - min(chosen) > self.slop_ns:
                return
            msgs = [q[s] for q, s in zip(self.queues, chosen)]
            for q, s in zip(self.queues, chosen):
                for old in [k for k in q if k <= s]:
                    del q[old]
        self.signalMessage(*msgs)
