"""CLI commands that need ROS (rclpy, message types): ``demo`` and ``replay``.

``python -m mahmr_ros.cli`` dispatches to them like to the ROS-free commands in
``mahmr_ros/commands/``; each module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args) ->
int``.
"""
