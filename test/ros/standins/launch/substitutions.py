"""Stand-in ``launch.substitutions``: LaunchConfiguration, EnvironmentVariable."""

from __future__ import annotations

from launch import perform


class LaunchConfiguration:
    def __init__(self, variable_name, *, default=None):
        self.variable_name = variable_name
        self.default = default

    def perform(self, context) -> str:
        if self.variable_name in context.launch_configurations:
            return context.launch_configurations[self.variable_name]
        if self.default is None:
            raise KeyError(f"launch configuration '{self.variable_name}' does not exist")
        return perform(self.default, context)


class EnvironmentVariable:
    def __init__(self, name, *, default_value=""):
        self.name = name
        self.default_value = default_value

    def perform(self, context) -> str:
        return context.environment.get(
            perform(self.name, context), perform(self.default_value, context)
        )
