"""The pure-Python plumbing: StampPairer (image/CameraInfo pairing fallback), DepthJoiner (colour
frame + depth image), LatestFrameWorker, and the parameter table -> NodeConfig."""

import threading
import time
from types import SimpleNamespace

import pytest

from mahmr_ros.ros.sync import DepthJoiner, StampPairer, stamp_ns
from mahmr_ros.ros.worker import LatestFrameWorker


def _msg(t_s: float, name: str = ""):
    sec = int(t_s)
    return SimpleNamespace(
        name=name,
        header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=round((t_s - sec) * 1e9))),
    )


def _pairer(**kwargs):
    pairs = []
    pairer = StampPairer(lambda image, info: pairs.append((image.name, info.name)), **kwargs)
    return pairer, pairs


def test_stamp_ns():
    assert stamp_ns(_msg(12.5)) == 12_500_000_000


def test_pairs_by_stamp_in_either_arrival_order():
    pairer, pairs = _pairer(slop_s=0.01, queue_size=5)
    pairer.add_image(_msg(1.0, "i1"))
    pairer.add_info(_msg(1.005, "c1"))  # info after image, within slop
    pairer.add_info(_msg(2.0, "c2"))
    pairer.add_image(_msg(2.0, "i2"))  # image after info
    assert pairs == [("i1", "c1"), ("i2", "c2")]


def test_no_pair_outside_slop_and_older_messages_dropped_on_match():
    pairer, pairs = _pairer(slop_s=0.01, queue_size=5)
    pairer.add_image(_msg(1.0, "i1"))
    pairer.add_image(_msg(2.0, "i2"))
    pairer.add_info(_msg(1.5, "c_far"))
    assert pairs == [] and pairer.waiting_images == 2
    pairer.add_info(_msg(2.0, "c2"))
    assert pairs == [("i2", "c2")]
    assert (
        pairer.waiting_images == 0
    )  # i1 is older than the matched image: it can never pair in order
    pairer.add_info(_msg(1.0, "c1_late"))
    assert len(pairs) == 1


def test_nearest_stamp_wins():
    pairer, pairs = _pairer(slop_s=0.05, queue_size=5)
    pairer.add_info(_msg(1.00, "c_a"))
    pairer.add_info(_msg(1.03, "c_b"))
    pairer.add_image(_msg(1.02, "i"))
    assert pairs == [("i", "c_b")]


def test_queue_is_bounded():
    pairer, pairs = _pairer(slop_s=0.001, queue_size=3)
    for k in range(10):
        pairer.add_image(_msg(float(k), f"i{k}"))
    assert pairer.waiting_images == 3 and not pairs


def test_cached_camera_info_pairs_unmatched_images_with_the_latest_info():
    strict, strict_pairs = _pairer(slop_s=0.01, queue_size=5)
    cached, cached_pairs = _pairer(slop_s=0.01, queue_size=5, use_cached=True)
    for pairer in (strict, cached):
        pairer.add_info(_msg(0.0, "c0"))  # a latched CameraInfo, sent once
        pairer.add_image(_msg(5.0, "i5"))
        pairer.add_image(_msg(6.0, "i6"))
    assert strict_pairs == []
    assert cached_pairs == [("i5", "c0"), ("i6", "c0")] and cached.cached_pairs == 2
    cached.add_info(_msg(7.0, "c7"))
    cached.add_image(_msg(7.0, "i7"))
    assert (
        cached_pairs[-1] == ("i7", "c7") and cached.cached_pairs == 2
    )  # a stamp match is still preferred


def test_worker_keeps_only_the_latest_frame_under_a_burst():
    seen, gate = [], threading.Event()

    def process(item):
        gate.wait(5.0)
        seen.append(item)

    worker = LatestFrameWorker(process)
    try:
        worker.submit(0)
        time.sleep(0.05)  # the worker is now blocked inside frame 0
        replaced = [worker.submit(k) for k in range(1, 6)]
        assert replaced == [False, True, True, True, True]
        gate.set()
        assert worker.wait_idle(5.0)
        assert seen == [0, 5]
        assert (worker.submitted, worker.processed, worker.dropped) == (6, 2, 4)
    finally:
        worker.stop()
    assert not worker.alive


def test_worker_survives_errors_and_reports_them():
    errors = []

    def process(item):
        if item == "bad":
            raise ValueError("boom")

    worker = LatestFrameWorker(process, on_error=lambda item, exc: errors.append((item, str(exc))))
    try:
        worker.submit("bad")
        assert worker.wait_idle(5.0)
        worker.submit("good")
        assert worker.wait_idle(5.0)
        assert (
            errors == [("bad", "boom")]
            and worker.failed == 1
            and worker.processed == 1
            and worker.alive
        )
    finally:
        worker.stop()


class FakeClock:
    def __init__(self):
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _joiner(wait_s=0.2, slop_s=0.02):
    out, clock = [], FakeClock()
    joiner = DepthJoiner(lambda frame, depth: out.append((frame, depth and depth.name)), slop_s,
                         wait_s, size=4, clock=clock)  # fmt: skip
    return joiner, out, clock


def test_depth_sent_right_after_the_colour_frame_is_used():
    """What drivers do: colour pair first, depth of the same stamp a moment later (issue 12, item
    3)."""
    joiner, out, clock = _joiner()
    joiner.add_frame(stamp_ns(_msg(1.0)), "f1")
    assert out == [] and joiner.waiting == 1  # held for its depth
    clock.now_s = 0.05  # 50 ms later
    joiner.add_depth(_msg(1.0, "d1"))
    assert out == [("f1", "d1")] and joiner.with_depth == 1


def test_depth_that_came_first_is_used_at_once_within_the_slop():
    joiner, out, _ = _joiner(slop_s=0.02)
    joiner.add_depth(_msg(2.01, "d2"))
    joiner.add_frame(stamp_ns(_msg(2.0)), "f2")
    joiner.add_frame(stamp_ns(_msg(3.0)), "f3")  # no depth within 20 ms: waits
    assert out == [("f2", "d2")] and joiner.waiting == 1


def test_no_depth_within_the_wait_means_the_frame_goes_on_without_it():
    joiner, out, clock = _joiner(wait_s=0.2)
    joiner.add_frame(stamp_ns(_msg(1.0)), "f1")
    clock.now_s = 0.1
    joiner.flush()
    assert out == []
    clock.now_s = 0.25
    joiner.flush()
    assert out == [("f1", None)] and joiner.without_depth == 1 and joiner.waiting == 0


def test_a_depth_for_a_newer_frame_drops_the_older_waiting_ones():
    joiner, out, clock = _joiner()
    for k in (1, 2, 3):
        joiner.add_frame(stamp_ns(_msg(float(k))), f"f{k}")
    joiner.add_depth(_msg(2.0, "d2"))
    assert (
        out == [("f2", "d2")] and joiner.dropped == 1 and joiner.waiting == 1
    )  # f1 dropped, f3 waits
    clock.now_s = 1.0
    joiner.flush()
    assert out[-1] == ("f3", None)


def test_zero_wait_emits_at_once():
    joiner, out, _ = _joiner(wait_s=0.0)
    joiner.add_frame(stamp_ns(_msg(1.0)), "f1")
    assert out == [("f1", None)]


def test_stop_with_a_slow_frame_returns_and_frees_after_it():
    """Deactivate must not hang on a slow frame, nor free the model under it (issue 12, item 5)."""
    started, release, freed = threading.Event(), threading.Event(), []

    def process(item):
        started.set()
        release.wait(5.0)

    worker = LatestFrameWorker(process)
    worker.submit(1)
    assert started.wait(5.0)
    t0 = time.monotonic()
    assert worker.stop(timeout_s=0.1, then=lambda: freed.append(time.monotonic())) is False
    assert time.monotonic() - t0 < 1.0 and freed == [] and worker.alive  # the frame still runs
    release.set()
    worker._thread.join(5.0)
    assert len(freed) == 1 and not worker.alive


def test_stop_of_an_idle_worker_frees_at_once():
    freed = []
    worker = LatestFrameWorker(lambda item: None)
    assert worker.stop(timeout_s=5.0, then=lambda: freed.append(1)) is True
    assert freed == [1]


@pytest.mark.parametrize(
    "values, fragment",
    [({"dto.mode": "magic"}, "dto.mode"), ({"input.qos_depth": 0}, ">= 1"),
     ({"input.qos_depth": "5"}, "expected int"), ({"publish.vertices": 1}, "expected bool"),
     ({"use_sim_time": True}, "unknown parameter"), ({"dto.moed": "off"}, "valid: autostart")],
)  # fmt: skip
def test_node_config_rejects_bad_values(values, fragment):
    from mahmr_ros.ros.params import config_from_values

    with pytest.raises(ValueError, match=fragment):
        config_from_values(values)


def test_node_config_defaults_and_pipeline_section():
    from mahmr_ros.pipeline_config import DEFAULT_CONFIG
    from mahmr_ros.ros.params import config_from_values

    defaults = config_from_values({})
    assert defaults.publish_vertices and defaults.input_image_qos == "auto"
    assert (
        defaults.pipeline_config() == DEFAULT_CONFIG
    )  # one source of defaults: pipeline_config.SETTINGS
    cfg = config_from_values({"estimator": "offline", "model.conf_thresh": 0.5, "dto.mode": "off"})
    config = cfg.pipeline_config()
    assert config["estimator"] == "offline" and config["model"]["conf_thresh"] == 0.5
    assert config["dto"] == {**DEFAULT_CONFIG["dto"], "mode": "off"} and cfg.dto_mode == "off"
    with pytest.raises(AttributeError):
        cfg.publish_tf = False  # frozen
    floor = config_from_values({"offline.camera_height_m": 1.2, "offline.camera_pitch_deg": 5.0})
    assert floor.pipeline_config()["offline"] == {"camera_height_m": 1.2, "camera_pitch_deg": 5.0}
    assert defaults.pipeline_config()["offline"]["camera_height_m"] is None  # ROS 0.0 = unset


def test_node_fields_are_exactly_the_node_parameters():
    from dataclasses import fields

    from mahmr_ros.ros.params import AUTOSTART, NODE_PARAMETERS, PIPELINE_PARAMETERS, NodeConfig

    names = {f.name for f in fields(NodeConfig)} - {"pipeline_values"}
    assert names == {spec.field for spec in (AUTOSTART, *NODE_PARAMETERS)}
    assert all(spec.read_only for spec in PIPELINE_PARAMETERS)
