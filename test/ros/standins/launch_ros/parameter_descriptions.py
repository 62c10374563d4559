"""Stand-in ``launch_ros.parameter_descriptions``: ParameterValue (a substitution with a value
type)."""

from __future__ import annotations

from launch import perform


class ParameterValue:
    def __init__(self, value, *, value_type=None):
        self.value = value
        self.value_type = value_type

    def perform(self, context):
        text = perform(self.value, context)
        return self.value_type(text) if self.value_type is not None else text
