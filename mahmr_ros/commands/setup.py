"""``python -m mahmr_ros.cli setup``, installed as ``ros2 run mahmr_ros mahmr_setup``: make the
default (offline) estimator ready in any install - source checkout, pip, or a colcon workspace.

1. Check that the Python packages it needs can be imported (rosdep does not install them), and name
   the pip command when one is missing.
2. Build its cached assets once (``mahmr_ros.offline.assets``: compact Anny body model ~1 min, the
   sample frame) into ``assets_dir()`` (``MAHMR_OFFLINE_DIR``, else ``~/.cache/mahmr_ros/offline``
   in an install).

``--check`` only reports (exit 1 when something is missing); a second run finds everything built
and returns at once.
"""

from __future__ import annotations

import argparse
import importlib.util

HELP = (
    "check the Python packages of the default estimator and build its cached assets (once, ~1 min)"
)
# import name -> what to pip install
REQUIRED = {"numpy": "numpy", "cv2": "opencv-python-headless", "torch": "torch", "smplx": "smplx",
            "anny": "anny", "roma": "roma", "mediapipe": "mediapipe"}  # fmt: skip
PIP_COMMAND = (
    "pip install -r <mahmr_ros>/requirements/core.txt -r "
    "<mahmr_ros>/requirements/colcon/offline.txt -c "
    "<mahmr_ros>/requirements/colcon/constraints.txt  (<mahmr_ros> = the source folder, or $(ros2 "
    "pkg prefix mahmr_ros)/share/mahmr_ros; inside the venv of README 'In a colcon workspace')"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="only report what is missing; build nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild the assets even if they are present"
    )


def missing_packages() -> list[str]:
    """pip names of the required packages that cannot be imported (checked without importing
    them)."""
    return [
        package for module, package in REQUIRED.items() if importlib.util.find_spec(module) is None
    ]


def assets_status() -> dict[str, bool]:
    """Path of each cached asset -> whether it is present and current (nothing is imported or
    built)."""
    from mahmr_ros.offline import assets
    from mahmr_ros.offline.sample import sample_path

    model = assets.model_path()
    return {str(model): model.is_file() and assets._built_with_installed_anny(model),
            str(sample_path()): sample_path().is_file()}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    missing = missing_packages()
    if missing:
        print(
            f"[setup] missing Python packages: {', '.join(missing)}. Install them with:\n  "
            f"{PIP_COMMAND}"
        )
        return 1
    status = assets_status()
    for path, ready in status.items():
        print(f"[setup] {'ready  ' if ready else 'missing'} {path}")
    if args.check:
        return 0 if all(status.values()) else 1
    from mahmr_ros.offline import assets

    return assets.main(["--force"] if args.force else [])
