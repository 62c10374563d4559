"""Test-only stand-in for ROS 2 ``diagnostic_updater`` (see ../README.md): ``Updater`` and the
status wrapper.

As upstream, constructing an ``Updater`` declares the ``diagnostic_updater.period`` parameter on
the node (a second Updater on the same node raises ParameterAlreadyDeclaredException) and creates a
``/diagnostics`` publisher (``.publisher``, depth 1) and a timer (``.timer``) that calls
``update``.
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class DiagnosticStatusWrapper(DiagnosticStatus):
    """A DiagnosticStatus with ``summary(level, message)`` and ``add(key, value)``."""

    def summary(self, level, message):
        self.level = level
        self.message = message

    def add(self, key, value):
        self.values.append(KeyValue(key=str(key), value=str(value)))


class Updater:
    """Runs the added tasks every ``period`` seconds and publishes their statuses as one
    DiagnosticArray."""

    def __init__(self, node, period=1.0):
        self.node = node
        self.tasks = []
        self.lock = threading.Lock()
        self.hwid = ""
        self.publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 1)
        self.period_parameter = "diagnostic_updater.period"
        self.period = node.declare_parameter(self.period_parameter, period).value
        self.timer = node.create_timer(self.period, self.update)

    def add(self, name, fn):
        with self.lock:
            self.tasks.append((name, fn))

    def setHardwareID(self, hwid):  # noqa: N802 - upstream name
        self.hwid = hwid

    def update(self):
        statuses = []
        with self.lock:
            for name, fn in self.tasks:
                status = DiagnosticStatusWrapper(
                    name=f"{self.node.get_name()}: {name}", hardware_id=self.hwid
                )
                statuses.append(fn(status))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)

    def force_update(self):
        self.update()
