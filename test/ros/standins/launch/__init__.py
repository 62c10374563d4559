"""Test-only stand-in for ROS 2 ``launch`` (see ../README.md): enough to run our launch files'
descriptions.

Mirrors the upstream classes our launch files use (``launch.actions``, ``.conditions``,
``.substitutions``, ``.launch_description_sources``) and their ``visit(context)`` /
``perform(context)`` protocol. Instead of starting processes, ``LaunchService.run`` records each
process action in ``context.launched`` (executable, parameters, remappings and the environment it
would get), which the tests compare with what they expect.
"""

from __future__ import annotations

import os


class LaunchContext:
    """Launch configurations (arguments), the environment processes get, and what was launched."""

    def __init__(self, argv: dict[str, str] | None = None):
        self.launch_configurations: dict[str, str] = dict(argv or {})
        self.environment: dict[str, str] = dict(os.environ)
        self.launched: list[dict] = []


def perform(value, context: LaunchContext) -> str:
    """A string, a substitution, or a list of them, performed to one string."""
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, context) for v in value)
    return value.perform(context) if hasattr(value, "perform") else str(value)


class LaunchDescription:
    def __init__(self, initial_entities=None):
        self.entities = list(initial_entities or [])

    def visit(self, context: LaunchContext) -> list:
        return self.entities


class LaunchService:
    """``include_launch_description`` then ``run``: visits every entity depth first, in order."""

    def __init__(self, argv: dict[str, str] | None = None):
        self.context = LaunchContext(argv)
        self._descriptions: list = []

    def include_launch_description(self, description) -> None:
        self._descriptions.append(description)

    def run(self) -> int:
        pending = list(self._descriptions)
        while pending:
            entity = pending.pop(0)
            pending[:0] = entity.visit(self.context) or []
        return 0
