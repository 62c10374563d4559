"""A third-party camera driver as its own process: plain rclpy, nothing of mahmr_ros.

Publishes ``frames`` 640x480 bgr8 images (921,600 bytes) + CameraInfo with the same stamp on
``image`` and ``camera_info`` at ``rate_hz`` once the image topic has a subscriber, with
``reliability`` (``reliable`` or ``best_effort`` = sensor-data QoS), then prints the stamps it sent
(JSON) and exits. ROS parameters: ``rate_hz``, ``frames``, ``reliability``.
"""

import json
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

WIDTH, HEIGHT = 640, 480


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("camera")
    rate_hz = node.declare_parameter("rate_hz", 20.0).value
    frames = node.declare_parameter("frames", 40).value
    reliable = node.declare_parameter("reliability", "reliable").value == "reliable"
    qos = (
        QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        if reliable
        else qos_profile_sensor_data
    )
    image_pub = node.create_publisher(Image, "image", qos)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
    end = time.monotonic() + 30.0
    while image_pub.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    image = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", step=WIDTH * 3)
    image.data = (
        np.random.default_rng(0).integers(0, 256, HEIGHT * WIDTH * 3, dtype=np.uint8).tobytes()
    )
    info = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = [550.0, 0.0, 320.0, 0.0, 550.0, 240.0, 0.0, 0.0, 1.0]
    info.p = [550.0, 0.0, 320.0, 0.0, 0.0, 550.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    sent = []
    start = time.monotonic()
    for k in range(frames):
        stamp = node.get_clock().now().to_msg()
        image.header.stamp = info.header.stamp = stamp
        image.header.frame_id = info.header.frame_id = "camera_optical_frame"
        image_pub.publish(image)
        info_pub.publish(info)
        sent.append(stamp.sec * 1_000_000_000 + stamp.nanosec)
        time.sleep(max(0.0, start + (k + 1) / rate_hz - time.monotonic()))
    time.sleep(1.0)  # reliable repairs
    print(json.dumps(sent), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
