"""What a robot integrator does to the node, with real rclpy + DDS (issue 12): parameters set from
outside, every lifecycle transition from every state, configure/cleanup cycles, deactivate during a
slow frame, late and old stamps, CameraInfo K vs P, and inputs that must be skipped cleanly.

A callback that raises inside the executor is what ends a node process (``rclpy.spin`` re-raises
it), so every test spins the node with ``spin_once`` and would fail on such an exception.
"""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
pytest.importorskip("mahmr_ros.msg", reason="messages not built (make setup)")

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from mahmr_ros.ros import node as node_module  # noqa: E402
from mahmr_ros.ros.image import bgr_to_image_msg  # noqa: E402
from mahmr_ros.ros.node import MahmrNode  # noqa: E402

from .harness import RELIABLE, H, K, W, camera_info, header_at  # noqa: E402

pytestmark = pytest.mark.ros


# --- parameters set from outside (ros2 param set, bag replay's use_sim_time) ---------------------


def _set_remote(h, name, value) -> tuple[bool, str]:
    """Set one parameter through the node's ~/set_parameters service, as ``ros2 param set``
    does."""
    client = h.peer.create_client(SetParameters, "/mahmr/set_parameters")
    h.wait_for(client.service_is_ready)
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    future = client.call_async(request)
    h.wait_for(future.done)
    h.peer.destroy_client(client)
    (result,) = future.result().results
    return result.successful, result.reason


@pytest.mark.parametrize(
    "name, value, accepted",
    [
        ("use_sim_time", True, True),  # declared by rclpy itself: every bag replay sets it
        ("no_such.parameter", 1, False),  # not declared
        ("dto.moed", "off", False),  # a typo of a declared name
        ("publish.vertices", "yes", False),  # wrong type
        ("publish.markers_max_rate_hz", 5, False),  # an integer for a double
        ("input.qos_depth", 2.5, False),
        ("publish.markers_max_rate_hz", -1.0, False),  # out of range
        ("publish.warn_period_s", 1e9, False),
        ("dto.mode", "rgbd", False),  # read-only (start-up only)
        ("publish.vertices", False, True),  # a runtime parameter
    ],
)
def test_parameter_fuzz_never_stops_the_node(harness, known, name, value, accepted):
    h = harness()
    successful, reason = _set_remote(h, name, value)
    assert successful == accepted, reason
    if name == "publish.vertices" and accepted:
        assert not h.node.config.publish_vertices
    h.send(frame=3, stamp_s=3.0)
    h.wait_for(lambda: h.meshes)  # still alive and processing
    assert h.node.worker.alive


def test_a_library_declaring_its_parameter_on_the_node_is_fine(harness):
    """diagnostic_updater.Updater declares diagnostic_updater.period on the node it reports for."""
    h = harness()
    h.node.declare_parameter("diagnostic_updater.period", 1.0)
    assert h.node.set_parameters([Parameter("diagnostic_updater.period", value=2.0)])[0].successful
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.meshes)


# --- lifecycle: every transition from every state ------------------------------------------------

T = Transition
# The managed-node state machine (design.ros2.org/articles/node_lifecycle.html): state ->
# transition -> goal.
VALID = {
    "unconfigured": {T.TRANSITION_CONFIGURE: "inactive",
                     T.TRANSITION_UNCONFIGURED_SHUTDOWN: "finalized"},
    "inactive": {T.TRANSITION_CLEANUP: "unconfigured", T.TRANSITION_ACTIVATE: "active",
                 T.TRANSITION_INACTIVE_SHUTDOWN: "finalized"},
    "active": {T.TRANSITION_DEACTIVATE: "inactive", T.TRANSITION_ACTIVE_SHUTDOWN: "finalized"},
    "finalized": {},
}  # fmt: skip
PATH = {  # how to reach each state from unconfigured
    "unconfigured": [],
    "inactive": [T.TRANSITION_CONFIGURE],
    "active": [T.TRANSITION_CONFIGURE, T.TRANSITION_ACTIVATE],
    "finalized": [T.TRANSITION_UNCONFIGURED_SHUTDOWN],
}
# Every primary transition, the transition-state results (ON_*_SUCCESS ...) and junk ids.
IDS = [*range(0, 9), 10, 11, 12, 20, 30, 40, 50, 60, 97, 98, 99, 200]


class LifecycleClient:
    """A fresh node (autostart off) plus a peer calling its ~/change_state and ~/get_state
    services."""

    count = 0

    def __init__(self, context):
        LifecycleClient.count += 1
        name = f"lifecycle_{LifecycleClient.count}"
        values = {"estimator": "test_known", "dto.mode": "off", "autostart": False,
                  "input.image_qos": "sensor_data"}  # fmt: skip
        params = [Parameter(k, value=v) for k, v in values.items()]
        self.node = MahmrNode(name, context=context, parameter_overrides=params)
        self.peer = rclpy.create_node(f"{name}_manager", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        for n in (self.node, self.peer):
            self.executor.add_node(n)
        self.change = self.peer.create_client(ChangeState, f"/{name}/change_state")
        self.get = self.peer.create_client(GetState, f"/{name}/get_state")
        self._until(lambda: self.change.service_is_ready() and self.get.service_is_ready())

    def _until(self, predicate, timeout_s=10.0):
        end = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < end, "timed out"
            self.executor.spin_once(
                timeout_sec=0.01
            )  # raises what a callback raised: the process would end

    def _call(self, client, request):
        future = client.call_async(request)
        self._until(future.done)
        return future.result()

    def transition(self, transition_id: int = 0, label: str = "") -> bool:
        return self._call(
            self.change, ChangeState.Request(transition=T(id=transition_id, label=label))
        ).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.peer.destroy_node()


@pytest.mark.parametrize("start", list(VALID))
def test_lifecycle_fuzz_every_transition_from_every_state(context, known, start):
    client = LifecycleClient(context)
    try:
        for step in PATH[start]:
            assert client.transition(step)
        assert client.state() == start
        for transition_id in IDS:
            if transition_id not in VALID[start]:
                assert not client.transition(transition_id), f"{start}: {transition_id} accepted"
                assert client.state() == start
        assert not client.transition(label="bogus") and client.state() == start
    finally:
        client.close()
    for transition_id, goal in VALID[start].items():
        client = LifecycleClient(context)
        try:
            for step in PATH[start]:
                assert client.transition(step)
            assert client.transition(transition_id) and client.state() == goal
            if goal == "active":
                assert client.node.worker.alive and client.node.pairing is not None
            if goal in ("unconfigured", "finalized"):
                assert client.node.pipeline is None and not client.node._publishers_ready
        finally:
            client.close()


def test_lifecycle_labels_as_ros2_lifecycle_set_sends_them(context, known):
    client = LifecycleClient(context)
    try:
        assert client.transition(label="configure") and client.transition(label="activate")
        assert not client.transition(label="activate")  # already active: refused, still running
        assert client.state() == "active"
        assert client.transition(label="shutdown") and client.state() == "finalized"
    finally:
        client.close()


# --- cleanup frees everything --------------------------------------------------------------------


@pytest.mark.parametrize(
    "libraries", [False, True], ids=["fallbacks", "tf2_ros+diagnostic_updater"]
)
def test_configure_cleanup_cycles_leave_no_publishers_behind(context, known, request, libraries):
    if libraries:
        pytest.importorskip(
            "tf2_msgs.msg", reason="needs tf2_msgs: the test fixture (make test) or ROS"
        )
        request.getfixturevalue("ros_libraries")
    client = LifecycleClient(context)
    node = client.node
    try:
        for _ in range(3):
            assert client.transition(T.TRANSITION_CONFIGURE), node.start_error
            client._until(lambda: node.count_publishers("/diagnostics") == 1)
            if node.tf_broadcaster is not None:
                client._until(lambda: node.count_publishers("/tf") == 1)
            assert client.transition(T.TRANSITION_CLEANUP)
            client._until(
                lambda: node.count_publishers("/tf") + node.count_publishers("/diagnostics") == 0
            )
        assert type(node.tf_broadcaster).__module__.startswith("tf2_ros") == libraries
    finally:
        client.close()


def test_deactivate_frees_the_model(context, known):
    client = LifecycleClient(context)
    try:
        assert client.transition(T.TRANSITION_CONFIGURE) and client.transition(
            T.TRANSITION_ACTIVATE
        )
        estimator = weakref.ref(client.node.pipeline.estimator)
        client.node.on_image_pair(
            bgr_to_image_msg(np.full((H, W, 3), 2, np.uint8), header_at(1.0)), None
        )
        assert client.transition(T.TRANSITION_DEACTIVATE)
        gc.collect()
        assert estimator() is None  # nothing (worker, callbacks, tracebacks) keeps the model alive
    finally:
        client.close()


def test_a_slow_frame_at_deactivate_never_publishes_and_is_freed_after(
    harness, known, monkeypatch
):
    monkeypatch.setattr(node_module, "WORKER_STOP_TIMEOUT_S", 0.2)
    known.delay_s = 1.0
    h = harness()
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: known.seen_frames == [1])  # the estimator is inside the slow frame now
    estimator = h.node.pipeline.estimator
    t0 = time.monotonic()
    h.node.trigger_deactivate()
    assert time.monotonic() - t0 < 0.9  # did not wait for the frame
    assert not estimator.closed  # not freed under the running frame
    h.spin(1.5)
    assert h.meshes == [] and estimator.closed


# --- stamps, throttled warnings, lazy processing -------------------------------------------------


def test_late_frames_are_skipped_and_a_stamp_jump_back_restarts_tracks(harness, known):
    h = harness()
    h.send(frame=1, stamp_s=100.0)
    h.wait_for(lambda: len(h.meshes) == 1)
    first_id = h.meshes[0].humans[0].id
    h.send(
        frame=2, stamp_s=99.9
    )  # arrived late (re-sent, reordered): never published after a newer one
    h.wait_for(lambda: h.node.counts["out_of_order"] == 1)
    h.send(frame=3, stamp_s=10.0)  # the bag looped
    h.wait_for(lambda: len(h.meshes) == 2)
    assert [m.header.stamp.sec for m in h.meshes] == [100, 10] and known.seen_frames == [1, 3]
    assert h.meshes[1].humans[0].id != first_id
    h.wait_for(lambda: h.warnings("went back") and h.warnings("out of order"))


def test_each_kind_of_bad_input_is_reported(harness, known):
    """Throttled warnings are per kind: a second kind of bad input is not hidden by the first."""
    h = harness()
    wrong = Image(width=W, height=H, encoding="32FC1", step=W * 4, data=bytes(W * H * 4))
    h.send(frame=1, stamp_s=1.0, image_msg=wrong)
    h.wait_for(
        lambda: h.node.counts["skipped"] == 1
    )  # one at a time: the worker keeps only the newest
    empty = Image(width=0, height=0, encoding="bgr8")
    h.send(frame=2, stamp_s=2.0, image_msg=empty, info_msg=camera_info(width=0, height=0))
    h.wait_for(lambda: h.node.counts["skipped"] == 2)
    odd_width = W - 1  # yuv422 packs pixel pairs
    odd = Image(
        width=odd_width,
        height=H,
        encoding="yuv422",
        step=odd_width * 2,
        data=bytes(odd_width * H * 2),
    )
    h.send(frame=3, stamp_s=3.0, image_msg=odd, info_msg=camera_info(width=odd_width))
    h.wait_for(lambda: h.node.counts["skipped"] == 3)
    assert (
        h.node.counts["failed"] == 0
    )  # the odd-width yuv422 frame is a clean skip, not a failure
    h.wait_for(
        lambda: all(h.warnings(f) for f in ("unsupported encoding", "empty image", "even width"))
    )


def test_tf_listeners_alone_do_not_wake_a_lazy_node(harness, known):
    tf2_msgs = pytest.importorskip(
        "tf2_msgs.msg", reason="needs tf2_msgs: the test fixture or ROS"
    )
    h = harness()
    meshes_sub = next(s for s in h.peer.subscriptions if s.topic_name == "/humans/meshes")
    h.peer.destroy_subscription(meshes_sub)  # nobody listens to /humans/meshes any more
    h.wait_for(lambda: h.node.meshes_pub.get_subscription_count() == 0)
    h.record(tf2_msgs.TFMessage, "/tf", RELIABLE)  # every robot has a TF listener
    h.wait_for(lambda: h.node.tf_broadcaster.pub_tf.get_subscription_count() > 0)
    h.send(frame=1, stamp_s=1.0)
    h.wait_for(lambda: h.node.counts["idle"] == 1)
    assert known.seen_frames == []


# --- CameraInfo: K or P, distortion, absurd intrinsics -------------------------------------------

P = [450.0, 0.0, 150.0, 0.0, 0.0, 450.0, 110.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def _info_with(p=P, d=(0.0,) * 5):
    info = camera_info()
    info.p, info.d, info.distortion_model = list(p), list(d), "plumb_bob"
    return info


@pytest.mark.parametrize(
    "image_topic, params, expected",
    [
        ("image", {}, K),  # auto on a raw image: K
        (
            "/camera/color/image_rect",
            {},
            [450.0, 0, 150.0, 0, 450.0, 110.0, 0, 0, 1],
        ),  # auto on image_rect: P
        ("image", {"input.intrinsics": "p"}, [450.0, 0, 150.0, 0, 450.0, 110.0, 0, 0, 1]),
        ("/camera/color/image_rect", {"input.intrinsics": "k"}, K),
    ],
)
def test_intrinsics_come_from_k_or_p_as_configured(harness, known, image_topic, params, expected):
    h = harness(image_topic=image_topic, **params)
    h.send(frame=1, stamp_s=1.0, info_msg=_info_with())
    h.wait_for(lambda: h.meshes)
    np.testing.assert_allclose(known.seen_K[0].ravel(), expected)
    np.testing.assert_allclose(h.meshes[0].k, expected)


def test_distortion_on_a_raw_image_is_warned_about(harness, known):
    h = harness()
    h.send(frame=1, stamp_s=1.0, info_msg=_info_with(d=(-0.3, 0.1, 0.0, 0.0, 0.0)))
    h.wait_for(lambda: h.meshes and h.warnings("distortion"))
    assert "input.intrinsics p" in h.warnings("distortion")[0]


ABSURD_K = {
    "fx_1e12": [1e12, 0, 160, 0, 1e12, 120, 0, 0, 1],  # pelvis at 6.9e9 m in the issue
    "cx_far_out": [500, 0, 5000, 0, 500, 120, 0, 0, 1],
    "row3": [500, 0, 160, 0, 500, 120, 0.1, 0, 1],
}


@pytest.mark.parametrize("k", ABSURD_K.values(), ids=ABSURD_K.keys())
def test_absurd_intrinsics_are_skipped(harness, known, k):
    h = harness()
    h.send(frame=1, stamp_s=1.0, info_msg=camera_info(k=k))
    h.wait_for(lambda: h.node.counts["skipped"] == 1)
    assert h.meshes == [] and known.seen_frames == []
    h.wait_for(lambda: h.warnings("implausible"))


def test_p_missing_in_camera_info_says_how_to_fix(harness, known):
    h = harness(**{"input.intrinsics": "p"})
    h.send(frame=1, stamp_s=1.0, info_msg=_info_with(p=[0.0] * 12))
    h.wait_for(lambda: h.warnings("set input.intrinsics k"))


# --- image QoS: auto follows the publishers ------------------------------------------------------


def test_auto_qos_matches_a_reliable_camera_and_follows_a_best_effort_one(harness, known):
    h = harness()  # the harness camera publishes reliable
    image_sub = h.node.pairing.subscriptions[0]
    assert image_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    best_effort = h.peer.create_publisher(Image, "image", qos_profile_sensor_data)
    h.wait_for(
        lambda: h.node.pairing is not None and h.node.pairing.subscriptions[0] is not image_sub
    )
    assert h.node.pairing.subscriptions[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    h.wait_for(
        lambda: (
            best_effort.get_subscription_count() > 0 and h.image_pub.get_subscription_count() > 0
        )
    )
    h.send(frame=4, stamp_s=4.0)  # both publishers are heard now
    h.wait_for(lambda: h.meshes)
    header = header_at(5.0)
    best_effort.publish(bgr_to_image_msg(np.full((H, W, 3), 5, np.uint8), header))
    info = camera_info()
    info.header = header
    h.info_pub.publish(info)
    h.wait_for(lambda: len(h.meshes) == 2)
    assert known.seen_frames == [4, 5]


def test_auto_qos_waits_for_a_publisher_before_subscribing(context, known):
    params = [Parameter("estimator", value="test_known"), Parameter("dto.mode", value="off")]
    node = MahmrNode("waiting", context=context, parameter_overrides=params)
    try:
        assert (
            node.pairing is None and node.worker.alive
        )  # active, subscribing once the camera appears
    finally:
        node.destroy_node()
