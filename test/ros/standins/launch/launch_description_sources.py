"""Stand-in ``launch.launch_description_sources``: PythonLaunchDescriptionSource (loads a
.launch.py)."""

from __future__ import annotations

import importlib.util

from launch import perform


class PythonLaunchDescriptionSource:
    def __init__(self, launch_file_path):
        self.location = launch_file_path

    def get_launch_description(self, context):
        path = perform(self.location, context)
        spec = importlib.util.spec_from_file_location("launch_file", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.generate_launch_description()
