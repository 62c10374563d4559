"""Fast DDS settings for camera-sized messages between processes (``config/fastdds.xml``).

Fast DDS's shared-memory transport gives each participant a 512 KB segment for the messages it
sends, so a 640x480 ``bgr8`` image (921,600 bytes) sent best effort to another process is mostly
lost: measured 18-37 % delivered at 30 Hz without the profile, 100 % with it, and only the
PUBLISHER's process needs it (``benchmarks/bench_dds_delivery.py``,
``benchmarks/results/dds_delivery.json``). Reliable readers of a reliable publisher get every frame
either way (lost fragments are re-sent).

Our executables (the node, the demo player) call ``use_large_frame_profile`` before ``rclpy.init``;
the launch files set the same variables for every process they start. A camera driver started
elsewhere needs ``FASTRTPS_DEFAULT_PROFILES_FILE`` in its own environment (README, "Frames between
processes").
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

#: Fast DDS 2.x (Humble, Jazzy) reads the first, Fast DDS 3 (Kilted and later) the second.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
PROFILE_FILENAME = "fastdds.xml"


def profile_path() -> Path | None:
    """``config/fastdds.xml`` of the installed package (ament index), else of the source checkout;
    or None."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        installed = Path(get_package_share_directory("mahmr_ros")) / "config" / PROFILE_FILENAME
        if installed.is_file():
            return installed
    except (ImportError, PackageNotFoundError, ValueError):
        pass
    checkout = Path(__file__).resolve().parents[2] / "config" / PROFILE_FILENAME
    return checkout if checkout.is_file() else None


def use_large_frame_profile(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point Fast DDS at ``config/fastdds.xml`` for this process; call it before ``rclpy.init``.

    Nothing changes when another RMW is selected (``RMW_IMPLEMENTATION``) or the user already chose
    a profile file (either variable set, even to an empty value to opt out).

    Returns:
        The profile path set, or None when nothing was changed.
    """
    rmw = (
        environ.get("RMW_IMPLEMENTATION", "") or "rmw_fastrtps_cpp"
    )  # Humble's and Jazzy's default
    if not rmw.startswith("rmw_fastrtps") or any(name in environ for name in PROFILE_VARIABLES):
        return None
    path = profile_path()
    if path is None:
        return None
    for name in PROFILE_VARIABLES:
        environ[name] = str(path)
    return str(path)
