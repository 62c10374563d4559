"""The launch files run against the test-only ``launch`` / ``launch_ros`` stand-ins (no ``ros2
launch`` here): which processes they start, with which parameters, remaps and environment, for
given arguments.

``get_package_share_directory("mahmr_ros")`` is pointed at the source tree, whose ``launch/`` and
``config/`` are what CMakeLists.txt installs into ``share/mahmr_ros``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).parent / "standins"
PROFILE = str(ROOT / "config" / "fastdds.xml")


@pytest.fixture
def launch_files(monkeypatch):
    """``run(name, **arguments)`` -> the processes the launch file would start (stand-in
    records)."""
    ament = pytest.importorskip(
        "ament_index_python.packages", reason="ament_index_python not installed"
    )
    monkeypatch.syspath_prepend(str(STANDINS))
    for name in [m for m in sys.modules if m.split(".")[0] in ("launch", "launch_ros")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(ament, "get_package_share_directory", lambda package: str(ROOT))
    for variable in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        monkeypatch.delenv(variable, raising=False)

    def run(name: str, **arguments) -> dict[str, dict]:
        from launch import LaunchService

        spec = importlib.util.spec_from_file_location(name, ROOT / "launch" / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        service = LaunchService(argv={k: str(v) for k, v in arguments.items()})
        service.include_launch_description(module.generate_launch_description())
        assert service.run() == 0
        return {process["executable"]: process for process in service.context.launched}

    yield run
    for name in [m for m in sys.modules if m.split(".")[0] in ("launch", "launch_ros")]:
        sys.modules.pop(name)


def test_mahmr_launch_keeps_the_params_file_camera_height_unless_given(launch_files):
    node = launch_files("mahmr.launch.py")["mahmr_node"]
    assert node["parameters"] == [
        str(ROOT / "config" / "mahmr.yaml")
    ]  # nothing overrides the file
    given = launch_files("mahmr.launch.py", camera_height=1.5)["mahmr_node"]
    assert given["parameters"][1:] == [{"offline.camera_height_m": 1.5}]


def test_mahmr_launch_remaps_and_sets_the_dds_profile(launch_files):
    launched = launch_files("mahmr.launch.py", image="/cam/color/image_raw")
    node = launched["mahmr_node"]
    assert ("image", "/cam/color/image_raw") in node["remappings"] and "rviz2" not in launched
    assert node["environment"]["FASTRTPS_DEFAULT_PROFILES_FILE"] == PROFILE
    assert node["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"] == PROFILE


def test_a_users_dds_profile_wins(launch_files, monkeypatch):
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/etc/my_profile.xml")
    node = launch_files("mahmr.launch.py")["mahmr_node"]
    assert node["environment"]["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/etc/my_profile.xml"


def test_demo_launch_player_node_and_the_sample_camera_height(launch_files):
    launched = launch_files("demo.launch.py")
    player, node = launched["mahmr_demo_player"], launched["mahmr_node"]
    assert (
        player["environment"]["FASTRTPS_DEFAULT_PROFILES_FILE"] == PROFILE
    )  # the publisher needs it
    assert ("image", "/demo/image") in player["remappings"] and ("image", "/demo/image") in node[
        "remappings"
    ]
    assert node["parameters"][1:] == [{"offline.camera_height_m": 1.2}] and "rviz2" in launched


def test_demo_launch_on_a_real_camera_has_no_player_and_no_sample_height(launch_files):
    launched = launch_files("demo.launch.py", use_player="false", image="/cam/image", rviz="false")
    assert set(launched) == {"mahmr_node"}
    assert launched["mahmr_node"]["parameters"] == [str(ROOT / "config" / "mahmr.yaml")]
