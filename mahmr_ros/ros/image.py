"""sensor_msgs Image / CompressedImage -> (H, W, 3) uint8 BGR, and back for publishers.

cv_bridge is used when importable (real ROS installs). Without it, numpy handles the encodings a
camera driver typically sends: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``, ``mono16`` (16
-> 8 bit as cv_bridge does: value * 255 / 65535), ``yuv422`` / ``uyvy`` (U Y0 V Y1) and ``yuyv`` /
``yuv422_yuy2`` (Y0 U Y1 V). Rows may be padded (``step`` > width * bytes per pixel) and 16-bit
data may be big-endian (``is_bigendian``). Anything else raises ``ImageError`` (an ``InputError``:
the node warns, skips the frame).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from mahmr_ros.dto.depth import metric_values_m
from mahmr_ros.pipeline import InputError

# encoding -> (channels, numpy dtype, cv2 conversion to BGR or None)
ENCODINGS: dict[str, tuple[int, str, int | None]] = {
    "bgr8": (3, "u1", None),
    "rgb8": (3, "u1", cv2.COLOR_RGB2BGR),
    "bgra8": (4, "u1", cv2.COLOR_BGRA2BGR),
    "rgba8": (4, "u1", cv2.COLOR_RGBA2BGR),
    "mono8": (1, "u1", cv2.COLOR_GRAY2BGR),
    "8UC1": (1, "u1", cv2.COLOR_GRAY2BGR),
    "mono16": (1, "u2", cv2.COLOR_GRAY2BGR),
    "16UC1": (1, "u2", cv2.COLOR_GRAY2BGR),
    "yuv422": (2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "yuyv": (2, "u1", cv2.COLOR_YUV2BGR_YUYV),
    "yuv422_yuy2": (2, "u1", cv2.COLOR_YUV2BGR_YUYV),
}


class ImageError(InputError):
    """An image message that cannot be turned into a BGR frame (the frame is skipped)."""


def supported_encodings() -> list[str]:
    return sorted(ENCODINGS)


@functools.lru_cache(maxsize=1)
def cv_bridge():
    """A ``cv_bridge.CvBridge`` when cv_bridge is importable (real ROS installs), else None (numpy
    path)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def image_to_bgr(msg, use_cv_bridge: bool = True) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``.

    Args:
        msg: sensor_msgs/Image (any object with height, width, encoding, is_bigendian, step, data).
        use_cv_bridge: use cv_bridge when it is importable (False forces the numpy path, for
            tests).

    Returns:
        (H, W, 3) uint8 BGR, a new contiguous array (never a view of the message buffer).

    Raises:
        ImageError: empty image, unsupported encoding, or a buffer shorter than ``step * height``.
    """
    height, width = int(msg.height), int(msg.width)
    if height == 0 or width == 0 or len(msg.data) == 0:
        raise ImageError(f"[image] empty image ({width}x{height}, {len(msg.data)} bytes)")
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageError(
            f"[image] unsupported encoding '{encoding}' (supported: "
            f"{', '.join(supported_encodings())})"
        )
    channels, kind, conversion = ENCODINGS[encoding]
    if channels == 2 and width % 2:  # 4:2:2 packs two pixels per (U, Y, V, Y) group
        raise ImageError(f"[image] {encoding} needs an even width, got {width} px")
    pixels = _pixels(
        msg, channels, kind
    )  # also checks step and buffer size, before cv_bridge sees them
    bridge = cv_bridge() if use_cv_bridge else None
    try:
        if bridge is not None:
            return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8"))
        if pixels.dtype.itemsize == 2:  # 16 -> 8 bit like cv_bridge (alpha = 255 / 65535)
            pixels = np.round(pixels.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
        if conversion is None:
            return np.ascontiguousarray(pixels)
        return cv2.cvtColor(pixels[:, :, 0] if channels == 1 else pixels, conversion)
    except (cv2.error, TypeError, ValueError) as err:  # cv_bridge's CvBridgeError is a TypeError
        raise ImageError(
            f"[image] cannot convert {width}x{height} {encoding} to bgr8: {err}"
        ) from err


def _pixels(msg, channels: int, kind: str) -> np.ndarray:
    """(H, W, channels) array of ``kind`` from an Image message (row padding and byte order
    handled)."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageError(
            f"[image] step {step} < width * bytes per pixel = {row_bytes} ({msg.encoding})"
        )
    if len(msg.data) < step * (height - 1) + row_bytes:
        raise ImageError(
            f"[image] {len(msg.data)} bytes < step * height = {step * height} ({msg.encoding})"
        )
    buffer = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, row_bytes), strides=(step, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)


# depth encoding -> (numpy dtype, metres per unit): REP-118 (32FC1 metres) and the common 16UC1
# millimetres.
DEPTH_ENCODINGS: dict[str, tuple[str, float]] = {
    "16UC1": ("u2", 1e-3),
    "mono16": ("u2", 1e-3),
    "32FC1": ("f4", 1.0),
}


def depth_to_metres(msg) -> np.ndarray:
    """Decode a registered depth ``sensor_msgs/Image`` to (H, W) float32 metres, NaN where invalid.

    Invalid = 0 (no return), NaN or +-inf, as depth drivers mark them; DTO ignores NaN pixels.

    Raises:
        ImageError: empty image, an encoding other than 16UC1 (mm) / 32FC1 (m), or a short buffer.
    """
    if int(msg.height) == 0 or int(msg.width) == 0 or len(msg.data) == 0:
        raise ImageError(f"[image] empty depth image ({msg.width}x{msg.height})")
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageError(
            f"[image] unsupported depth encoding '{msg.encoding}' (expected 16UC1 mm or 32FC1 "
            "metres)"
        )
    kind, unit = DEPTH_ENCODINGS[msg.encoding]
    # DTO's own conversion (mm/m -> m, invalid -> NaN); no range cut here: DTO applies its own.
    return metric_values_m(_pixels(msg, 1, kind)[:, :, 0], unit, max_range_m=np.inf)


def compressed_to_bgr(msg) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg, png, ...) with cv2.imdecode.

    Returns:
        (H, W, 3) uint8 BGR.

    Raises:
        ImageError: empty or undecodable data.
    """
    if len(msg.data) == 0:
        raise ImageError("[image] empty CompressedImage")
    image = cv2.imdecode(np.frombuffer(memoryview(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageError(f"[image] cannot decode CompressedImage (format '{msg.format}')")
    return image


def bgr_to_image_msg(image_bgr: np.ndarray, header=None):
    """(H, W, 3) uint8 BGR -> ``sensor_msgs/Image`` with encoding ``bgr8`` (for publishers and
    tests)."""
    from sensor_msgs.msg import Image

    image = np.ascontiguousarray(image_bgr, dtype=np.uint8)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * 3)
    msg.data = image.tobytes()
    return msg
