"""The demo graph (FramePlayer -> MahmrNode -> receiver) end to end over real DDS, with the test
estimator.

Checks what `make demo` prints and writes: the per-person table from the received messages alone,
ids stable over frames, the overlay PNG and the glTF scene.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from mahmr_ros.ros.commands.demo import format_report, run_graph, write_outputs  # noqa: E402

from .known import make_human  # noqa: E402

pytestmark = pytest.mark.ros

K = np.array([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]])


def test_demo_graph_reports_and_writes_what_the_node_published(known, tmp_path):
    known.humans = [
        make_human(pelvis=(0.3, 0.0, 2.0), height_m=1.62),
        make_human(pelvis=(-0.4, 0.1, 4.0)),
    ]
    image = np.full((240, 320, 3), 11, np.uint8)
    params = {"estimator": "test_known", "dto.mode": "off"}
    report = run_graph(image, K, params, frames=2, timeout_s=20.0)

    assert len(report["frames"]) == 2 and known.seen_frames == [11, 11]
    (first, _), (last, latency_ms) = report["frames"]
    assert latency_ms > 0 and not last.k_estimated
    np.testing.assert_allclose(np.asarray(last.k).reshape(3, 3), K)
    assert [m.id for m in first.humans] == [
        m.id for m in last.humans
    ]  # tracker ids stable over frames
    assert report["topology"].body_model == "test_box"

    text = format_report(report)
    assert "2 people on /humans/meshes" in text and "from CameraInfo" in text
    assert "1.62" in text and "2.02" in text  # height of person 1; distance |(0.3, 0, 2)| = 2.02 m

    written = write_outputs(report, image, tmp_path)
    assert [p.name for p in written] == ["overlay.png", "scene.glb"]
    overlay = cv2.imread(str(written[0]))
    assert overlay.shape == image.shape and (overlay != 11).any()  # meshes were drawn
    assert written[1].stat().st_size > 0


def test_demo_graph_without_camera_info_reports_an_estimated_k(known):
    image = np.full((240, 320, 3), 3, np.uint8)
    params = {"estimator": "test_known", "dto.mode": "off", "input.use_camera_info": False}
    report = run_graph(image, None, params, frames=1, timeout_s=20.0)
    msg, _ = report["frames"][0]
    assert msg.k_estimated and "estimated by the estimator" in format_report(report)


def test_demo_graph_reports_a_node_that_cannot_start():
    with pytest.raises(RuntimeError, match="unknown estimator 'nope'"):
        run_graph(np.zeros((8, 8, 3), np.uint8), K, {"estimator": "nope"}, frames=1, timeout_s=5.0)
