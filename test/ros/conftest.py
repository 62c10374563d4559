"""Fixtures shared by the ROS tests: the test estimator ``test_known`` (known.py), rclpy contexts,
the in-process harness, and the stand-ins of ROS libraries that no registry offers here
(standins/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .known import SETTINGS, KnownEstimatorSettings

STANDINS = Path(__file__).parent / "standins"
STANDIN_MODULES = ("message_filters", "tf2_ros", "cv_bridge", "diagnostic_updater")


@pytest.fixture
def known():
    """The ``test_known`` settings, reset to one default person and no delay."""
    fresh = KnownEstimatorSettings()
    SETTINGS.__dict__.update(fresh.__dict__)
    return SETTINGS


@pytest.fixture(scope="module")
def context():
    """A private rclpy context per test module (so modules cannot see each other's nodes)."""
    import rclpy

    from .harness import make_context

    ctx = make_context()
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def harness(context, known):
    """``harness(**params)`` -> a started Harness (node + peer); all are closed after the test."""
    from .harness import Harness

    made = []

    def make(**params):
        made.append(Harness(context, **params))
        return made[-1]

    yield make
    for h in made:
        h.close()


@pytest.fixture
def ros_libraries(monkeypatch):
    """Put the test-only stand-ins of message_filters, tf2_ros, cv_bridge and diagnostic_updater on
    the path, so the node takes its library code paths; everything is restored after the test."""
    from mahmr_ros.ros import image

    monkeypatch.syspath_prepend(str(STANDINS))
    for name in STANDIN_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    image.cv_bridge.cache_clear()
    yield
    for name in STANDIN_MODULES:
        sys.modules.pop(name, None)
    image.cv_bridge.cache_clear()
