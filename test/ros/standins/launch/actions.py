"""Stand-in ``launch.actions``: DeclareLaunchArgument, SetEnvironmentVariable,
IncludeLaunchDescription, OpaqueFunction."""

from __future__ import annotations

from launch import perform


class DeclareLaunchArgument:
    def __init__(self, name, *, default_value=None, description="", **kwargs):
        self.name = name
        self.default_value = default_value
        self.description = description

    def visit(self, context) -> list:
        if self.name not in context.launch_configurations:
            if self.default_value is None:
                raise RuntimeError(f"required launch argument '{self.name}' was not given")
            context.launch_configurations[self.name] = perform(self.default_value, context)
        return []


class SetEnvironmentVariable:
    def __init__(self, name, value, **kwargs):
        self.name = name
        self.value = value

    def visit(self, context) -> list:
        context.environment[perform(self.name, context)] = perform(self.value, context)
        return []


class IncludeLaunchDescription:
    def __init__(self, launch_description_source, *, launch_arguments=(), **kwargs):
        self.launch_description_source = launch_description_source
        self.launch_arguments = list(launch_arguments)

    def visit(self, context) -> list:
        for name, value in self.launch_arguments:
            context.launch_configurations[perform(name, context)] = perform(value, context)
        return [self.launch_description_source.get_launch_description(context)]


class OpaqueFunction:
    def __init__(self, *, function, args=None, kwargs=None, **other):
        self.function = function
        self.args = list(args or [])
        self.kwargs = dict(kwargs or {})

    def visit(self, context) -> list:
        return list(self.function(context, *self.args, **self.kwargs) or [])
