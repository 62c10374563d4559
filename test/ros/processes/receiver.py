"""A subscriber of /humans/meshes as its own process: prints ``matched`` once its subscription has
matched the node's publisher, then the header stamps it received (JSON, ns) once no message came
for ``--idle`` seconds after the first one (or after ``--timeout`` seconds in all)."""

import argparse
import json
import time

import rclpy
from mahmr_ros.msg import HumanMeshArray
from rclpy.qos import QoSProfile, ReliabilityPolicy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("receiver")
    stamps, last = [], [time.monotonic()]

    def on_meshes(msg):
        stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
        last[0] = time.monotonic()

    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    subscription = node.create_subscription(HumanMeshArray, "/humans/meshes", on_meshes, qos)
    start, matched = time.monotonic(), False
    while time.monotonic() - start < args.timeout and not (
        stamps and time.monotonic() - last[0] > args.idle
    ):
        rclpy.spin_once(node, timeout_sec=0.05)
        if not matched and subscription.get_publisher_count() > 0:
            matched = True
            print("matched", flush=True)
    print(json.dumps(stamps), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
