"""Image decoding without cv_bridge: every encoding, padded rows, big-endian 16-bit, bad inputs.

Messages are plain namespaces with the sensor_msgs/Image fields (no DDS needed); one test
round-trips a real sensor_msgs/Image when the ROS wheels are importable.
"""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mahmr_ros.ros.image import (
    ImageError,
    compressed_to_bgr,
    depth_to_metres,
    image_to_bgr,
    supported_encodings,
)

H, W = 6, 8


def _bgr(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """Pack (H, W[, C]) pixels into Image fields, with ``pad`` junk bytes after every row."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype.itemsize == 2:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    data = np.concatenate([rows, junk], axis=1).tobytes()
    return SimpleNamespace(
        height=pixels.shape[0],
        width=pixels.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=rows.shape[1] + pad,
        data=data,
    )


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize(
    "encoding, make",
    [
        ("bgr8", lambda bgr: bgr),
        ("rgb8", lambda bgr: bgr[:, :, ::-1]),
        ("bgra8", lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])),
        ("rgba8", lambda bgr: np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 7, np.uint8)])),
    ],
)
def test_colour_encodings_decode_to_the_same_bgr(encoding, make, pad):
    bgr = _bgr()
    out = image_to_bgr(_msg(make(bgr), encoding, pad=pad), use_cv_bridge=False)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, bgr)


@pytest.mark.parametrize("pad", [0, 3])
def test_mono8_replicates_grey_into_three_channels(pad):
    grey = _bgr()[:, :, 0]
    out = image_to_bgr(_msg(grey, "mono8", pad=pad), use_cv_bridge=False)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_mono16_scales_like_cv_bridge_in_both_byte_orders(bigendian, pad):
    levels = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 5
    raw = levels * 257  # 8-bit level k is 16-bit k * 257 exactly
    out = image_to_bgr(_msg(raw, "mono16", pad=pad, bigendian=bigendian), use_cv_bridge=False)
    np.testing.assert_array_equal(out[:, :, 1], levels.astype(np.uint8))
    assert out[0, 1, 0] == 5 and out[-1, -1, 2] == (H * W - 1) * 5


def _yuv422(y: np.ndarray, u: int, v: int, order: str) -> np.ndarray:
    """(H, W) luma + one chroma pair -> (H, W, 2) packed bytes in UYVY or YUYV order."""
    packed = np.empty((H, W, 2), np.uint8)
    chroma = np.tile(np.array([u, v], np.uint8), (H, W // 2))
    if order == "uyvy":
        packed[:, :, 0], packed[:, :, 1] = chroma, y
    else:
        packed[:, :, 0], packed[:, :, 1] = y, chroma
    return packed


@pytest.mark.parametrize("pad", [0, 4])
@pytest.mark.parametrize(
    "encoding, order", [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuyv", "yuyv")]
)
def test_yuv422_byte_orders(encoding, order, pad):
    luma = np.tile(np.linspace(40, 220, W).astype(np.uint8), (H, 1))
    grey = image_to_bgr(
        _msg(_yuv422(luma, 128, 128, order), encoding, pad=pad), use_cv_bridge=False
    )
    # Neutral chroma: grey pixels whose brightness follows the luma ramp column by column.
    assert np.abs(grey.astype(int) - grey[:, :, :1]).max() <= 1
    assert np.all(np.diff(grey[0, :, 1].astype(int)) > 0)
    red = image_to_bgr(
        _msg(_yuv422(np.full((H, W), 100, np.uint8), 90, 220, order), encoding), False
    )
    assert np.all(red[:, :, 2].astype(int) > red[:, :, 0].astype(int) + 50)


@pytest.mark.parametrize(
    "msg, fragment",
    [
        (
            SimpleNamespace(height=0, width=4, encoding="bgr8", is_bigendian=0, step=12, data=b""),
            "empty",
        ),
        (
            SimpleNamespace(
                height=1, width=1, encoding="32FC1", is_bigendian=0, step=4, data=b"\0" * 4
            ),
            "unsupported",
        ),
        (
            SimpleNamespace(
                height=4, width=4, encoding="bgr8", is_bigendian=0, step=12, data=b"\0" * 20
            ),
            "bytes",
        ),
        (
            SimpleNamespace(
                height=4, width=4, encoding="bgr8", is_bigendian=0, step=6, data=b"\0" * 48
            ),
            "step",
        ),
    ],
)
def test_bad_images_raise_input_errors_naming_the_problem(msg, fragment):
    with pytest.raises(ImageError, match=fragment):
        image_to_bgr(msg, use_cv_bridge=False)


def test_supported_encodings_cover_the_issue_list():
    wanted = {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "yuyv"}
    assert wanted <= set(supported_encodings())


def test_compressed_png_round_trip_and_garbage():
    bgr = _bgr(3)
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    np.testing.assert_array_equal(
        compressed_to_bgr(SimpleNamespace(format="png", data=png.tobytes())), bgr
    )
    with pytest.raises(ImageError, match="cannot decode"):
        compressed_to_bgr(SimpleNamespace(format="jpeg", data=b"not a jpeg"))
    with pytest.raises(ImageError, match="empty"):
        compressed_to_bgr(SimpleNamespace(format="jpeg", data=b""))


def test_real_sensor_msgs_image_round_trip():
    pytest.importorskip("sensor_msgs.msg", reason="ROS wheels not installed")
    from mahmr_ros.ros.image import bgr_to_image_msg

    bgr = _bgr(5)
    msg = bgr_to_image_msg(bgr)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (H, W, W * 3, "bgr8")
    np.testing.assert_array_equal(image_to_bgr(msg, use_cv_bridge=False), bgr)


def test_depth_16uc1_millimetres_and_invalid_pixels():
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    depth = depth_to_metres(_msg(mm[:, :, None], "16UC1", pad=3))
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[np.nan, 1.0], [2.5, 65.535]], rtol=1e-6)


def test_depth_32fc1_metres_big_endian_and_non_finite():
    m = np.array([[1.25, np.inf], [np.nan, -1.0]], np.float32)
    depth = depth_to_metres(_msg(m.astype(">f4")[:, :, None], "32FC1", bigendian=True))
    np.testing.assert_allclose(depth, [[1.25, np.nan], [np.nan, np.nan]])


@pytest.mark.parametrize("encoding", ["bgr8", "8UC1"])
def test_depth_rejects_colour_and_8_bit(encoding):
    with pytest.raises(ImageError, match="unsupported depth encoding"):
        depth_to_metres(_msg(np.zeros((2, 2, 1), np.uint8), encoding))


def test_odd_width_yuv422_is_a_clean_skip():
    msg = _msg(
        np.zeros((2, 3, 2), np.uint8), "yuv422"
    )  # 3 px wide: not a whole (U, Y, V, Y) group
    with pytest.raises(ImageError, match="even width"):
        image_to_bgr(msg, use_cv_bridge=False)
