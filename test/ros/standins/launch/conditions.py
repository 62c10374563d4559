"""Stand-in ``launch.conditions``: IfCondition."""

from __future__ import annotations

from launch import perform


class IfCondition:
    def __init__(self, predicate_expression):
        self.predicate_expression = predicate_expression

    def evaluate(self, context) -> bool:
        value = perform(self.predicate_expression, context).strip().lower()
        if value not in ("true", "false", "1", "0"):
            raise ValueError(f"IfCondition expects true/false, got '{value}'")
        return value in ("true", "1")
