"""MahmrNode beyond the basics, with real rclpy + DDS: lifecycle, ~/enable, lazy processing,
diagnostics, markers clearing, the debug image, REP-155 topics (test fixture hri_msgs) and depth
input."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from lifecycle_msgs.msg import State  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from mahmr_ros.ros.node import MahmrNode  # noqa: E402

from .harness import FRAME, RELIABLE, H, W, camera_info, header_at  # noqa: E402
from .known import make_human  # noqa: E402

pytestmark = pytest.mark.ros


def _state(node) -> int:
    return node._state_machine.current_state[0]


def _spin_until(executor, predicate, timeout_s=10.0):
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        executor.spin_once(timeout_sec=0.01)


def test_lifecycle_transitions_free_and_reload_the_model(context, known):
    params = [Parameter("estimator", value="test_known"), Parameter("dto.mode", value="off"),
              Parameter("autostart", value=False),
              Parameter("input.image_qos",
                        value="sensor_data")]  # subscribes at activation  # fmt: skip
    node = MahmrNode(context=context, parameter_overrides=params)
    try:
        assert _state(node) == State.PRIMARY_STATE_UNCONFIGURED and node.pipeline is None
        node.trigger_configure()
        assert _state(node) == State.PRIMARY_STATE_INACTIVE
        first = node.pipeline.estimator
        assert node.pairing is None and node.worker is None  # inactive: loaded, not subscribed
        node.trigger_activate()
        assert _state(node) == State.PRIMARY_STATE_ACTIVE and node.worker.alive and node.pairing
        node.trigger_deactivate()
        assert _state(node) == State.PRIMARY_STATE_INACTIVE
        assert first.closed and node.pipeline is None and node.pairing is None  # model freed
        node.trigger_activate()
        assert _state(node) == State.PRIMARY_STATE_ACTIVE
        assert (
            node.pipeline.estimator is not first and not node.pipeline.estimator.closed
        )  # reloaded
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert _state(node) == State.PRIMARY_STATE_UNCONFIGURED and not node._publishers_ready
    finally:
        node.destroy_node()


def test_failed_configure_says_why_and_stays_unconfigured(context):
    params = [
        Parameter("estimator", value="no_such_estimator"),
        Parameter("autostart", value=False),
    ]
    node = MahmrNode(context=context, parameter_overrides=params)
    try:
        node.trigger_configure()
        assert _state(node) == State.PRIMARY_STATE_UNCONFIGURED
        assert "unknown estimator 'no_such_estimator'" in node.start_error
    finally:
        node.destroy_node()


def test_enable_service_pauses_and_resumes(harness, known):
    h = harness()
    client = h.peer.create_client(SetBool, "/mahmr/enable")
    h.wait_for(client.service_is_ready)
    future = client.call_async(SetBool.Request(data=False))
    h.wait_for(future.done)
    assert future.result().success and not h.node.enabled
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.node.counts["received"] == 1)
    h.spin(0.2)
    assert known.seen_frames == [] and h.meshes == []
    future = client.call_async(SetBool.Request(data=True))
    h.wait_for(future.done)
    h.send(frame=2, stamp_s=2.0)
    h.wait_for(lambda: h.meshes)
    assert known.seen_frames == [2]


def test_no_inference_without_subscribers(context, known):
    params = [Parameter("estimator", value="test_known"), Parameter("dto.mode", value="off")]
    node = MahmrNode(context=context, parameter_overrides=params)
    peer = rclpy.create_node("lonely_camera", context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        executor.add_node(node)
        executor.add_node(peer)
        pub = peer.create_publisher(Image, "image", RELIABLE)
        _spin_until(executor, lambda: pub.get_subscription_count() > 0)
        from mahmr_ros.ros.image import bgr_to_image_msg

        node.config = node.config.__class__(
            **{**node.config.__dict__, "input_use_camera_info": False}
        )
        node.on_image(bgr_to_image_msg(np.full((H, W, 3), 5, np.uint8), header_at(1.0)))
        assert node.counts["idle"] == 1 and node.worker.wait_idle(1.0) and known.seen_frames == []
        peer.create_subscription(MarkerArray, "/mahmr/markers", lambda m: None, 1)
        _spin_until(executor, lambda: node.markers_pub.get_subscription_count() > 0)
        node.on_image(bgr_to_image_msg(np.full((H, W, 3), 7, np.uint8), header_at(3.0)))
        assert node.worker.wait_idle(5.0) and known.seen_frames == [7]
    finally:
        executor.shutdown()
        node.destroy_node()
        peer.destroy_node()


def test_diagnostics_report_rates_latency_stages_and_people(harness, known):
    known.humans = [make_human(), make_human(pelvis=(-0.5, 0.0, 4.0))]
    h = harness()
    diagnostics = h.record(DiagnosticArray, "/diagnostics", RELIABLE)
    for i in range(3):
        h.send(frame=i + 1, stamp_s=10.0 + i)
        h.wait_for(lambda n=i: len(h.meshes) == n + 1)
    diagnostics.clear()
    h.wait_for(lambda: diagnostics, timeout_s=5.0)
    (status,) = diagnostics[-1].status
    values = {kv.key: kv.value for kv in status.values}
    assert status.message == "running" and status.level == DiagnosticStatus.OK
    assert float(values["input_rate_hz"]) > 0 and float(values["output_rate_hz"]) > 0
    assert (
        values["people"] == "2"
        and values["published"] == "3"
        and values["estimator"] == "KnownEstimator"
    )
    assert float(values["processing_ms"]) > 0 and "stage_ms.estimator.known" in values
    assert (
        float(values["stamp_to_publish_ms"]) != 0.0
    )  # stamps are synthetic (10 s): large, but computed
    assert any(k.startswith("memory_mb.") for k in values) and "dropped_stale" in values
    assert (
        values["image_subscription"] == "/image (reliable, 1 publisher(s))"
    )  # auto QoS took the camera's


def test_markers_are_cleared_when_people_leave(harness, known):
    h = harness()
    markers = h.record(MarkerArray, "/mahmr/markers", RELIABLE)
    h.wait_for(lambda: h.node.markers_pub.get_subscription_count() > 0)
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: markers)
    assert [m.action for m in markers[0].markers][0] == Marker.DELETEALL and len(
        markers[0].markers
    ) == 3
    assert all(m.lifetime.sec + m.lifetime.nanosec > 0 for m in markers[0].markers[1:])
    known.humans = []
    h.send(frame=2, stamp_s=2.0)
    h.wait_for(lambda: len(markers) == 2)
    assert [m.action for m in markers[1].markers] == [Marker.DELETEALL]


def test_debug_image_only_when_subscribed(harness, known):
    h = harness()
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.meshes and h.node.worker.wait_idle(0.0))
    debug = h.record(Image, "/mahmr/debug_image", RELIABLE)
    h.wait_for(lambda: h.node.debug_image_pub.get_subscription_count() > 0)
    h.spin(0.1)
    assert debug == []
    h.send(frame=40, stamp_s=2.0)
    h.wait_for(lambda: debug)
    msg = debug[0]
    assert (msg.width, msg.height, msg.encoding) == (W, H, "bgr8") and msg.header.stamp.sec == 2
    pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(H, W, 3)
    assert (pixels != 40).any() and (pixels == 40).any()  # the box is drawn over part of the image


def test_rep155_topics_with_hri_msgs(harness, known):
    hri = pytest.importorskip(
        "hri_msgs.msg", reason="needs hri_msgs: the test fixture (make test) or ROS"
    )
    h = harness()
    tracked = h.record(hri.IdsList, "/humans/bodies/tracked", RELIABLE)
    h.wait_for(lambda: h.node.hri.tracked_pub.get_subscription_count() > 0)
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: tracked and h.meshes)
    body_id = h.meshes[0].humans[0].id
    assert list(tracked[0].ids) == [body_id] and tracked[0].header.frame_id == FRAME
    roi = h.record(hri.NormalizedRegionOfInterest2D, f"/humans/bodies/{body_id}/roi", RELIABLE)
    skeleton = h.record(hri.Skeleton2D, f"/humans/bodies/{body_id}/skeleton2d", RELIABLE)
    h.wait_for(lambda: all(p.get_subscription_count() for p in h.node.hri.publishers()))
    h.send(frame=2, stamp_s=2.0)
    h.wait_for(lambda: roi and skeleton)
    # conftest person: bbox (100, 50, 180, 230) in a 320 x 240 image.
    np.testing.assert_allclose([roi[0].xmin, roi[0].ymin, roi[0].xmax, roi[0].ymax],
                               [100 / W, 50 / H, 180 / W, 230 / H], rtol=1e-6)  # fmt: skip
    assert len(skeleton[0].skeleton) == 18
    # The test body has no COCO joints (only "pelvis", "head"): every keypoint has confidence 0.
    assert all(p.c == 0.0 for p in skeleton[0].skeleton)
    known.humans = []
    h.send(frame=3, stamp_s=3.0)
    h.wait_for(lambda: len(tracked) >= 3)
    assert list(tracked[-1].ids) == [] and h.node.hri.publishers() == [h.node.hri.tracked_pub]


CROWD = {}


class CrowdEstimator:
    """Test double: the synthetic crowd's scale-ambiguous estimates (2D-perfect, metric depth
    wrong)."""

    body_model = "smpl"

    def __init__(self, **kwargs):
        pass

    def topology(self):
        from mahmr_ros.types import MeshTopology

        return MeshTopology("smpl", CROWD["scene"].faces, ["pelvis"])

    def estimate(self, image_bgr, K):
        from mahmr_ros.types import Estimation

        scene = CROWD["scene"]
        return Estimation([h.replace(track_id="") for h in scene.estimates], scene.K, False, {})


@pytest.mark.parametrize("depth_after_s", [0.0, 0.05], ids=["right_after", "50ms_after"])
def test_depth_sent_after_the_colour_pair_moves_people_toward_the_truth(harness, depth_after_s):
    """Drivers publish depth on its own topic, usually just after colour: the frame waits for
    it."""
    from mahmr_ros.pipeline import register_estimator
    from mahmr_ros.testing.crowd import make_crowd

    scene = CROWD["scene"] = make_crowd(3, seed=5, image_hw=(H, W), num_vertices=1500)
    register_estimator("test_crowd_node", CrowdEstimator)
    K_scene = [float(v) for v in scene.K.ravel()]
    h = harness(**{"estimator": "test_crowd_node", "dto.mode": "rgbd"})
    depth_pub = h.peer.create_publisher(Image, "depth", RELIABLE)
    h.wait_for(
        lambda: h.node.inputs.depth_sub is not None and depth_pub.get_subscription_count() > 0
    )
    depth_msg = Image(height=H, width=W, encoding="32FC1", step=W * 4)
    depth_msg.data = scene.depth_m.astype("<f4").tobytes()
    depth_msg.header = header_at(1.0)
    h.send(frame=1, stamp_s=1.0, info_msg=camera_info(k=K_scene))
    h.spin(depth_after_s)
    depth_pub.publish(depth_msg)
    h.wait_for(lambda: h.meshes)
    assert h.node.depth_joiner.with_depth == 1 and h.node.depth_joiner.without_depth == 0
    published = np.array([[m.pelvis.position.x, m.pelvis.position.z] for m in h.meshes[0].humans])
    truth = np.array([[t.pelvis[0], t.pelvis[2]] for t in scene.truth])
    initial = np.array([[e.pelvis[0], e.pelvis[2]] for e in scene.estimates])

    def error(points):  # each point to its nearest true person (order may differ after tracking)
        return np.array([np.min(np.linalg.norm(truth - p, axis=1)) for p in points])

    assert error(published).mean() < 0.25 * error(initial).mean(), (
        error(initial),
        error(published),
    )
    assert all(m.depth_sigma_m > 0 for m in h.meshes[0].humans)


def test_without_depth_a_frame_goes_on_after_the_wait(harness):
    h = harness(
        **{"dto.mode": "rgbd", "input.depth_wait_s": 0.1, "input.image_qos": "sensor_data"}
    )
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.meshes)
    assert h.node.depth_joiner.without_depth == 1
    h.wait_for(lambda: h.warnings("no depth image"))
