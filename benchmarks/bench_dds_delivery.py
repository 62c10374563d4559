"""Camera images between processes over Fast DDS: how many arrive, and which side needs the
profile.

    tools/isolated.sh tools/env.sh python benchmarks/bench_dds_delivery.py            # all cases
    tools/isolated.sh tools/env.sh python benchmarks/bench_dds_delivery.py --frames 30 --rate 30

Each case starts a receiver process, then a publisher process (separate processes, as ``ros2
launch`` starts a camera driver and the node), publishes ``--frames`` 640x480 ``bgr8`` images
(921,600 bytes) at ``--rate`` Hz once the two have matched, and counts the distinct frames that
arrived. Cases vary the publisher's QoS (reliable, as our player and many drivers; best effort, the
sensor-data QoS of other drivers), the receiver's QoS, and which processes load
``config/fastdds.xml`` (16 MB shared-memory segments) through ``FASTRTPS_DEFAULT_PROFILES_FILE``.
Output: ``benchmarks/results/dds_delivery.json``; the machine load is recorded with it (the 2-core
development machine is shared).
ROS imports are allowed here (a ROS benchmark, like ``mahmr_ros/ros``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / "fastdds.xml"
TOPIC = "/bench/image"
WIDTH, HEIGHT = 640, 480
# (publisher QoS, receiver QoS, which processes load the profile)
CASES = [
    (pub, sub, profile)
    for pub, sub in (
        ("reliable", "best_effort"),
        ("best_effort", "best_effort"),
        ("reliable", "reliable"),
    )
    for profile in ("none", "receiver", "publisher", "both")
]


def _qos(kind: str, depth: int = 5):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if kind == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def publish(args) -> None:
    """Publisher process: wait for the receiver, send ``frames`` images at ``rate`` Hz (stamp =
    index)."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pub = node.create_publisher(Image, TOPIC, _qos(args.qos))
    end = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the reader's side of the match settle too
    msg = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", step=WIDTH * 3)
    msg.data = (
        np.random.default_rng(0).integers(0, 255, HEIGHT * WIDTH * 3, dtype=np.uint8).tobytes()
    )
    start = time.monotonic()
    for k in range(args.frames):
        msg.header.stamp.sec = k
        pub.publish(msg)
        time.sleep(max(0.0, start + (k + 1) / args.rate - time.monotonic()))
    time.sleep(1.0)  # let reliable repairs finish before the participant goes away
    node.destroy_node()
    rclpy.try_shutdown()


def receive(args) -> None:
    """Receiver process: count distinct frames until 2 s pass without one (or 30 s in all); print
    JSON."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_receiver")
    stamps = set()
    last = [time.monotonic()]

    def on_image(msg):
        stamps.add(msg.header.stamp.sec)
        last[0] = time.monotonic()

    node.create_subscription(Image, TOPIC, on_image, _qos(args.qos))
    start = time.monotonic()
    while time.monotonic() - start < 30.0 and not (stamps and time.monotonic() - last[0] > 2.0):
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": len(stamps)}))
    node.destroy_node()
    rclpy.try_shutdown()


def run_case(pub_qos: str, sub_qos: str, profile: str, frames: int, rate: float) -> dict:
    def env(role: str) -> dict:
        e = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_PROFILES_FILE")}
        if profile in (role, "both"):
            e["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
        return e

    me = [sys.executable, __file__, "--frames", str(frames), "--rate", str(rate)]
    receiver = subprocess.Popen(me + ["--role", "receive", "--qos", sub_qos], env=env("receiver"),
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    publisher = subprocess.Popen(
        me + ["--role", "publish", "--qos", pub_qos], env=env("publisher")
    )
    publisher.wait(timeout=60)
    out, _ = receiver.communicate(timeout=60)
    received = json.loads(out.strip().splitlines()[-1])["received"]
    return {"publisher_qos": pub_qos, "receiver_qos": sub_qos, "profile_loaded_by": profile,
            "frames": frames, "received": received,
            "fraction": round(received / frames, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--role", choices=("publish", "receive"), default=None)
    parser.add_argument("--qos", choices=("reliable", "best_effort"), default="best_effort")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "dds_delivery.json")
    )
    args = parser.parse_args()
    if args.role == "publish":
        return publish(args)
    if args.role == "receive":
        return receive(args)
    results = []
    for case in CASES:
        results.append(run_case(*case, args.frames, args.rate))
        print(json.dumps(results[-1]), flush=True)
    report = {
        "what": f"{WIDTH}x{HEIGHT} bgr8 images between two processes, Fast DDS (rmw_fastrtps_cpp)",
        "rate_hz": args.rate,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
