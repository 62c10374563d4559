"""FramePlayer: publishes one image (+ its CameraInfo, same stamp) at a fixed rate, like a camera
driver.

Used by ``make demo`` (in-process) and by ``launch/demo.launch.py`` (``mahmr_demo_player``), so the
node can be tried without a camera. The image is the bundled offline sample unless a file is given.

Parameters of ``mahmr_demo_player``: ``rate_hz`` (2.0), ``reliability`` (``reliable``, or
``best_effort`` as sensor-data drivers publish) and ``frames`` (0 = forever; else stop after that
many frames were delivered). The timer only publishes while somebody subscribes to ``image``, so no
frame is sent into the void.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from mahmr_ros.ros.dds import use_large_frame_profile
from mahmr_ros.ros.image import bgr_to_image_msg

LINGER_S = 1.0  # after the last of ``frames``, keep the publisher up this long before exiting
RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
}


def camera_info_msg(K: np.ndarray, image_hw: tuple[int, int], header: Header) -> CameraInfo:
    """A pinhole, distortion-free CameraInfo for ``K`` (3x3, pixels) and an image of
    ``image_hw``."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    info = CameraInfo(header=header, height=int(image_hw[0]), width=int(image_hw[1]))
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(v) for v in K.ravel()]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [
        float(v) for v in np.hstack([K, np.zeros((3, 1))]).ravel()
    ]  # P = [K | 0], no stereo baseline
    return info


class FramePlayer(Node):
    """Publish ``image_bgr`` on ``image`` and its CameraInfo on ``camera_info`` every ``1 /
    rate_hz`` s.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame.
        K: (3, 3) intrinsics of the frame in pixels, or None to publish no CameraInfo.
        rate_hz: publish rate; 0 = only when ``publish_once`` is called.
        frame_id: ``header.frame_id`` of both messages (the camera's optical frame).
        **kwargs: passed to ``rclpy.node.Node``.
    """

    def __init__(
        self,
        image_bgr: np.ndarray,
        K: np.ndarray | None,
        rate_hz: float = 2.0,
        frame_id: str = "camera_color_optical_frame",
        node_name: str = "demo_player",
        **kwargs,
    ):
        super().__init__(node_name, **kwargs)
        self.image = np.ascontiguousarray(image_bgr, np.uint8)
        self.K = None if K is None else np.asarray(K, np.float64).reshape(3, 3)
        self.frame_id = frame_id
        rate_hz = self.declare_parameter("rate_hz", float(rate_hz)).value
        reliability = self.declare_parameter("reliability", "reliable").value
        self.frames = self.declare_parameter("frames", 0).value
        if reliability not in RELIABILITY:
            raise ValueError(
                f"[player] reliability must be one of {', '.join(RELIABILITY)}, got "
                f"'{reliability}'"
            )
        qos = QoSProfile(depth=5, reliability=RELIABILITY[reliability])
        self.image_pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.sent = 0
        self.timer = self.create_timer(1.0 / rate_hz, self._on_timer) if rate_hz > 0 else None

    @property
    def done(self) -> bool:
        """True once ``frames`` frames were published (never with ``frames`` = 0)."""
        return 0 < self.frames <= self.sent

    def _on_timer(self) -> None:
        if not self.done and self.image_pub.get_subscription_count() > 0:
            self.publish_once()

    def publish_once(self) -> Header:
        """Publish the frame now (stamp = the node clock); returns the header used."""
        header = Header(frame_id=self.frame_id, stamp=self.get_clock().now().to_msg())
        self.image_pub.publish(bgr_to_image_msg(self.image, header))
        if self.K is not None:
            self.info_pub.publish(camera_info_msg(self.K, self.image.shape[:2], header))
        self.sent += 1
        return header


def main(args=None) -> int:
    """``mahmr_demo_player [IMAGE]``: play IMAGE (K from a 60 degree FoV) or the bundled sample.

    Exits 0 after ``frames`` frames (or on Ctrl-C), 2 with a one-line reason when there is nothing
    to play (unreadable IMAGE, offline assets not built).
    """
    import sys

    argv = rclpy.utilities.remove_ros_args(sys.argv if args is None else args)[1:]
    use_large_frame_profile()  # before rclpy.init: 921 KB frames to other processes (see dds.py)
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        image, K = load_frame(argv[0] if argv else None)
        node = FramePlayer(image, K)
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
        linger_until = time.monotonic() + LINGER_S  # reliable readers may still need repairs
        while rclpy.ok() and time.monotonic() < linger_until:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (
        OSError,
        ImportError,
        ValueError,
    ) as err:  # AssetError is an OSError (FileNotFoundError)
        rclpy.logging.get_logger("demo_player").fatal(f"[player] cannot play: {err}")
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def load_frame(path: str | None, hfov_deg: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """The image at ``path`` with a K for ``hfov_deg`` (centred principal point), or the bundled
    sample.

    Raises:
        FileNotFoundError: ``path`` is not a readable image.
    """
    import cv2

    if path is None:
        from mahmr_ros.offline.sample import sample_frame

        return sample_frame()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"[player] cannot read an image from '{path}'")
    from mahmr_ros.offline.place import assumed_K

    return image, assumed_K(image.shape[1], image.shape[0], hfov_deg)


if __name__ == "__main__":
    raise SystemExit(main())
