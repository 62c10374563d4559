"""``cli replay``: image folders and rosbag2 .mcap files in; an .mcap of the node's outputs out,
read back."""

from __future__ import annotations

import argparse
from collections import defaultdict

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")
pytest.importorskip("mcap_ros2", reason="mcap-ros2-support not installed")

from mcap_ros2.reader import read_ros2_messages  # noqa: E402
from mcap_ros2.writer import Writer  # noqa: E402

from mahmr_ros.ros.commands import replay  # noqa: E402
from mahmr_ros.ros.msgdef import full_definition  # noqa: E402

from .known import make_human  # noqa: E402

pytestmark = pytest.mark.ros
K = np.array([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]])


def _args(path, out, **kw):
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    argv = [str(path), "--out", str(out), "--estimator", "test_known"]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return parser.parse_args(argv)


def _read(path):
    by_topic = defaultdict(list)
    for record in read_ros2_messages(str(path)):
        by_topic[record.channel.topic].append(record)
    return by_topic


@pytest.fixture
def no_dto(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("dto:\n  mode: 'off'\n")
    return cfg


def test_image_folder_to_mcap(tmp_path, known, no_dto, capsys):
    known.humans = [make_human(pelvis=(0.2, 0.0, 3.0)), make_human(pelvis=(-0.6, 0.1, 4.0))]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((240, 320, 3), 20 + i, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out.mcap"
    assert replay.run(_args(folder, out, config=no_dto, fps=5)) == 0
    assert "3 frames (0 skipped), 6 person-detections, 2 ids" in capsys.readouterr().out
    topics = _read(out)
    assert {t: len(v) for t, v in topics.items()} == {
        "/humans/meshes/topology": 1, "/humans/meshes": 3, "/tf": 3, "/mahmr/markers": 3,
        "/camera/image/compressed": 3,
    }  # fmt: skip
    meshes = [r.ros_msg for r in topics["/humans/meshes"]]
    assert [m.header.stamp.nanosec for m in meshes] == [0, 200_000_000, 400_000_000]
    assert all(m.k_estimated for m in meshes)  # no --hfov: the estimator chose K
    ids = [[h.id for h in m.humans] for m in meshes]
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 2
    np.testing.assert_allclose(
        [meshes[0].humans[0].pelvis.position.x, meshes[0].humans[0].pelvis.position.z],
        [0.2, 3.0],
        atol=1e-5,
    )
    tf = topics["/tf"][0].ros_msg
    assert sorted(t.child_frame_id for t in tf.transforms) == sorted(f"body_{i}" for i in ids[0])
    jpeg = np.frombuffer(bytes(topics["/camera/image/compressed"][2].ros_msg.data), np.uint8)
    assert cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[0, 0, 0] == pytest.approx(22, abs=2)
    assert topics["/humans/meshes/topology"][0].ros_msg.body_model == "test_box"


def _write_bag(path, frames):
    with open(path, "wb") as f:
        writer = Writer(f)
        image_schema = writer.register_msgdef(
            "sensor_msgs/msg/Image", full_definition("sensor_msgs/msg/Image")
        )
        info_schema = writer.register_msgdef(
            "sensor_msgs/msg/CameraInfo", full_definition("sensor_msgs/msg/CameraInfo")
        )
        for stamp_ns, value in frames:
            header = {
                "stamp": {"sec": stamp_ns // 10**9, "nanosec": stamp_ns % 10**9},
                "frame_id": "cam",
            }
            pixels = np.full((240, 320, 3), value, np.uint8)
            image = {"header": header, "height": 240, "width": 320, "encoding": "bgr8",
                     "is_bigendian": 0, "step": 960, "data": pixels.tobytes()}  # fmt: skip
            roi = {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}
            info = {"header": header, "height": 240, "width": 320, "distortion_model": "plumb_bob",
                    "d": [0.0] * 5, "k": K.ravel().tolist(), "r": np.eye(3).ravel().tolist(),
                    "p": np.hstack([K, np.zeros((3, 1))]).ravel().tolist(), "binning_x": 0,
                    "binning_y": 0, "roi": roi}  # fmt: skip
            writer.write_message("/cam/camera_info", info_schema, info, log_time=stamp_ns)
            writer.write_message("/cam/image_raw", image_schema, image, log_time=stamp_ns + 1)
        writer.finish()


def test_rosbag2_mcap_to_mcap_uses_camera_info_and_stamps(tmp_path, known, no_dto):
    bag = tmp_path / "bag.mcap"
    _write_bag(bag, [(5_000_000_000, 31), (5_100_000_000, 32)])
    out = tmp_path / "humans.mcap"
    assert replay.run(_args(bag, out, config=no_dto, no_images=True)) == 0
    assert known.seen_frames == [31, 32]
    np.testing.assert_allclose(known.seen_K[0], K)
    topics = _read(out)
    assert "/camera/image/compressed" not in topics
    meshes = [r.ros_msg for r in topics["/humans/meshes"]]
    assert [(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for m in meshes] == [
        (5, 0, "cam"), (5, 100_000_000, "cam")
    ]  # fmt: skip
    assert not meshes[0].k_estimated and list(meshes[0].k) == pytest.approx(K.ravel())


def test_bad_inputs_are_reported(tmp_path, capsys):
    assert replay.run(_args(tmp_path / "missing.mp4", tmp_path / "o.mcap")) == 2
    assert "input not found" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert replay.run(_args(tmp_path / "empty", tmp_path / "o.mcap")) == 2
    assert "no images" in capsys.readouterr().out
    cv2.imwrite(str(tmp_path / "empty" / "0.png"), np.zeros((8, 8, 3), np.uint8))
    assert replay.run(_args(tmp_path / "empty", tmp_path / "o.mcap", hfov=0)) == 2
    assert "hfov_deg must be in (1, 179)" in capsys.readouterr().out
    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    assert replay.run(_args(tmp_path / "clip.mp4", tmp_path / "o.mcap")) == 2
    assert "cannot open" in capsys.readouterr().out
