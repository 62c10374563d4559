"""The pure-Python plumbing: StampPairer (image/CameraInfo pairing fallback) and LatestFrameWorker."""

import threading
import time
from types import SimpleNamespace

import pytest

from mahmr_ros.ros.sync import StampPairer, stamp_ns
from mahmr_ros.ros.worker import LatestFrameWorker


def _msg(t_s: float, name: str = ""):
    sec = int(t_s)
    return SimpleNamespace(
        name=name, header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=round((t_s - sec) * 1e9)))
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
    assert pairer.waiting_images == 0  # i1 is older than the matched image: it can never pair in order
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
    assert cached_pairs[-1] == ("i7", "c7") and cached.cached_pairs == 2  # a stamp match is still preferred


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
        assert errors == [("bad", "boom")] and worker.failed == 1 and worker.processed == 1 and worker.alive
    finally:
        worker.stop()


@pytest.mark.parametrize(
    "values, fragment", [({"dto.mode": "magic"}, "dto.mode"), ({"input.qos_depth": 0}, ">= 1")]
)
def test_node_config_rejects_bad_values(values, fragment):
    from mahmr_ros.ros.params import config_from_values

    with pytest.raises(ValueError, match=fragment):
        config_from_values(values)


def test_node_config_defaults_and_pipeline_section():
    from mahmr_ros.ros.params import PARAMETERS, config_from_values

    cfg = config_from_values({"estimator": "offline", "model.conf_thresh": 0.5, "dto.mode": "off"})
    assert cfg.publish_vertices and cfg.input_image_qos == "sensor_data"
    assert cfg.pipeline_config() == {
        "estimator": "offline",
        "model": {
            **{s.name[6:]: s.default for s in PARAMETERS if s.name.startswith("model.")},
            "conf_thresh": 0.5,
        },
        "offline": {"camera_pitch_deg": 0.0},
        "dto": {"mode": "off", "depth_model": ""},
        "tracking": {"reid_window_s": 1.0, "max_distance_m": 1.0},
    }
    with pytest.raises(AttributeError):
        cfg.publish_tf = False  # frozen
    floor = config_from_values({"offline.camera_height_m": 1.2, "offline.camera_pitch_deg": 5.0})
    assert floor.pipeline_config()["offline"] == {"camera_height_m": 1.2, "camera_pitch_deg": 5.0}
