"""Test-only stand-in for ROS 2 ``cv_bridge`` (see ../README.md): ``CvBridge.imgmsg_to_cv2`` to
``bgr8``.

Supports the 8-bit colour and mono encodings (``bgr8``, ``rgb8``, ``bgra8``, ``rgba8``, ``mono8``);
any other conversion raises ``CvBridgeError`` as upstream does for conversions it does not know.
``calls`` counts the conversions, so a test can tell that the bridge (not the node's numpy path)
decoded a frame.
"""

from __future__ import annotations

import cv2
import numpy as np

_TO_BGR = {"bgr8": (3, None), "rgb8": (3, cv2.COLOR_RGB2BGR), "bgra8": (4, cv2.COLOR_BGRA2BGR),
           "rgba8": (4, cv2.COLOR_RGBA2BGR), "mono8": (1, cv2.COLOR_GRAY2BGR)}  # fmt: skip


class CvBridgeError(TypeError):
    """Raised for a conversion the bridge cannot do."""


class CvBridge:
    calls = 0

    def imgmsg_to_cv2(self, img_msg, desired_encoding="passthrough"):
        if desired_encoding != "bgr8" or img_msg.encoding not in _TO_BGR:
            raise CvBridgeError(
                f"conversion from {img_msg.encoding} to {desired_encoding} is not supported"
            )
        CvBridge.calls += 1
        channels, code = _TO_BGR[img_msg.encoding]
        rows = np.frombuffer(bytes(img_msg.data), np.uint8).reshape(img_msg.height, img_msg.step)
        image = rows[:, : img_msg.width * channels].reshape(
            img_msg.height, img_msg.width, channels
        )
        return image.copy() if code is None else cv2.cvtColor(image, code)
