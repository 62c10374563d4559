"""Command line: ``python -m mahmr_ros.cli <command> ...`` (only ``demo`` and ``replay`` need ROS).

Each command is one module exposing ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args)
-> int``: in ``mahmr_ros/commands/``, or in ``mahmr_ros/ros/commands/`` for the two that use rclpy
or message types (the core never imports ROS; this file only names those modules). Commands are
imported only when chosen, so a missing optional dependency of one command never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "infer": "run a pipeline on images; write per-image results (npz/json) and overlay PNGs",
    "convert-smpl": "convert an official SMPL .pkl (chumpy) into a plain .npz smplx can load",
    "demo": (
        "run the node graph on a real street scene or the bundled sample (player -> node -> "
        "receiver)"
    ),
    "replay": (
        "run the pipeline over a rosbag2 .mcap, a video or an image folder and write an .mcap"
    ),
    "live": "run the pipeline on a video file or webcam and show/write mesh overlays",
    "export-onnx": "export the network's stages to ONNX",
    "build-engine": "prebuild TensorRT engines from the ONNX stages",
    "setup": "check the default estimator's Python packages and build its cached assets (once)",
}


ROS_COMMANDS = ("demo", "replay")  # modules in mahmr_ros/ros/commands/


def _load(name: str):
    package = "mahmr_ros.ros.commands" if name in ROS_COMMANDS else "mahmr_ros.commands"
    return importlib.import_module(f"{package}.{name.replace('-', '_')}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m mahmr_ros.cli", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                _load(name).add_arguments(p)
            except ModuleNotFoundError as err:
                parser.error(f"command '{name}' is not available in this install ({err})")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(_load(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
