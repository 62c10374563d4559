"""Stand-in ``launch_ros.actions``: Node, recorded in ``context.launched`` instead of being
started."""

from __future__ import annotations

from launch import perform


class Node:
    def __init__(self, *, executable, package=None, name=None, namespace=None, parameters=None,
                 remappings=None, arguments=None, condition=None, **kwargs):  # fmt: skip
        self.executable, self.package, self.name, self.namespace = (
            executable,
            package,
            name,
            namespace,
        )
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.arguments = list(arguments or [])
        self.condition = condition

    def visit(self, context) -> list:
        if self.condition is not None and not self.condition.evaluate(context):
            return []
        parameters = [
            {k: perform(v, context) if hasattr(v, "perform") else v for k, v in p.items()}
            if isinstance(p, dict) else perform(p, context)
            for p in self.parameters
        ]  # fmt: skip
        context.launched.append({
            "package": perform(self.package, context),
            "executable": perform(self.executable, context),
            "name": perform(self.name, context) if self.name is not None else None,
            "parameters": parameters,
            "remappings": [(perform(a, context), perform(b, context)) for a, b in self.remappings],
            "arguments": [perform(a, context) for a in self.arguments],
            "environment": dict(context.environment),
        })  # fmt: skip
        return []
