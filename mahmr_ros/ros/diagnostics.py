"""What the node reports on ``/diagnostics``: rates, latency, per-stage times, people, drops,
backend, memory.

``diagnostic_updater`` is used when importable (it adds the status to its own periodic
DiagnosticArray); otherwise the node publishes ``diagnostic_msgs/DiagnosticArray`` itself once per
second with the same status.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

# Thresholds for the status level (named, as hri_body_detect does).
PROCESSING_WARN_MS = 1000.0  # a frame slower than this -> WARN
INPUT_STALE_S = 5.0  # active but no image for this long -> WARN


class RateMeter:
    """Events per second over a sliding window of the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._times: deque = deque()
        self.last_s: float | None = None

    def tick(self, now_s: float | None = None) -> None:
        now_s = time.monotonic() if now_s is None else now_s
        self._times.append(now_s)
        self.last_s = now_s
        while self._times and now_s - self._times[0] > self.window_s:
            self._times.popleft()

    def rate_hz(self, now_s: float | None = None) -> float:
        now_s = time.monotonic() if now_s is None else now_s
        recent = [t for t in self._times if now_s - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)


def device_memory_mb() -> tuple[str, float]:
    """("cuda", MB allocated by torch) when torch uses CUDA, else ("host_rss", resident MB of the
    process)."""
    torch = sys.modules.get("torch")  # never import torch just to report on it
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return "cuda", torch.cuda.memory_allocated() / 2**20
    try:
        with open("/proc/self/statm") as f:
            return "host_rss", int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return "host_rss", float("nan")


def node_status(node) -> tuple[int, str, dict[str, str]]:
    """(level, message, key -> value) describing ``node`` (a MahmrNode) now."""
    now = time.monotonic()
    active = node.pipeline is not None and node.worker is not None
    values = {
        "input_rate_hz": f"{node._input_rate.rate_hz(now):.2f}",
        "output_rate_hz": f"{node._output_rate.rate_hz(now):.2f}",
        "stamp_to_publish_ms": f"{node.last_latency_ms:.1f}",
        "processing_ms": f"{node.last_processing_ms:.1f}",
        "people": str(node.last_people),
        "dropped_stale": str(node.dropped_frames),
        **{k: str(v) for k, v in node.counts.items()},
        **{f"stage_ms.{k}": f"{v:.1f}" for k, v in node.last_timings_ms.items()},
        "enabled": str(node.enabled),
    }
    if node.pipeline is not None:
        estimator, config = node.pipeline.estimator, node.config
        values["estimator"] = type(estimator).__name__
        values["body_model"] = node.pipeline.body_model
        values["backend"] = str(
            getattr(estimator, "backend", config.pipeline_value("model.backend"))
        )
        values["precision"] = str(
            getattr(estimator, "precision", config.pipeline_value("model.precision"))
        )
    floor = getattr(node, "last_floor", None)
    if floor is not None:
        values.update({
            "floor.source": floor.source,
            "floor.camera_height_m": f"{floor.camera_height_m:.3f}",
            "floor.camera_height_sigma_m": f"{floor.camera_height_sigma_m:.3f}",
            "floor.pitch_deg": f"{math.degrees(floor.pitch_rad):.2f}",
            "floor.pitch_sigma_deg": f"{math.degrees(floor.pitch_sigma_rad):.2f}",
            "floor.people": str(floor.people),
            "floor.frames": str(floor.frames),
        })  # fmt: skip
    kind, mb = device_memory_mb()
    values[f"memory_mb.{kind}"] = f"{mb:.0f}"
    if not active:
        return DiagnosticStatus.WARN, "inactive (not configured/activated)", values
    if not node.enabled:
        return DiagnosticStatus.OK, "paused by ~/enable", values
    if node.counts["failed"] and node.counts["published"] == 0:
        return DiagnosticStatus.ERROR, "every frame failed (see the log)", values
    if node.last_processing_ms > PROCESSING_WARN_MS:
        return DiagnosticStatus.WARN, f"slow: {node.last_processing_ms:.0f} ms per frame", values
    values["image_subscription"] = node.image_subscription_status()
    last_input = node._input_rate.last_s
    if last_input is None or now - last_input > INPUT_STALE_S:
        return DiagnosticStatus.WARN, f"no input images ({values['image_subscription']})", values
    return DiagnosticStatus.OK, "running", values


def node_diagnostics(node) -> DiagnosticStatus:
    """The node's status as a ``diagnostic_msgs/DiagnosticStatus``."""
    level, message, values = node_status(node)
    status = DiagnosticStatus(
        name=f"{node.get_name()}: pipeline", hardware_id=node.get_fully_qualified_name()
    )
    status.level = level
    status.message = message
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status


def make_updater(node):
    """A ``diagnostic_updater.Updater`` reporting ``node_status`` when importable, else None.

    The Updater publishes ``/diagnostics`` from its own timer and declares the
    ``diagnostic_updater.period`` parameter on ``node``; ``destroy_updater`` undoes all three
    (lifecycle cleanup).
    """
    try:
        import diagnostic_updater
    except ImportError:
        return None

    def task(stat):
        level, message, values = node_status(node)
        stat.summary(level, message)
        for key, value in values.items():
            stat.add(key, value)
        return stat

    updater = diagnostic_updater.Updater(node)
    updater.setHardwareID(node.get_fully_qualified_name())
    updater.add("pipeline", task)
    return updater


def destroy_updater(node, updater) -> None:
    """Destroy what a ``diagnostic_updater.Updater`` made on ``node``: its timer, publisher and
    period parameter (the next Updater declares it again; a value from a parameter file comes back
    with it)."""
    if updater is None:
        return
    if getattr(updater, "timer", None) is not None:
        node.destroy_timer(updater.timer)
    if getattr(updater, "publisher", None) is not None:
        node.destroy_publisher(updater.publisher)
    period = getattr(updater, "period_parameter", None)
    if period and node.has_parameter(period):
        node.undeclare_parameter(period)
