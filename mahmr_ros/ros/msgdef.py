"""Full ROS 2 message definitions (the ``ros2msg`` schema text MCAP files carry), read from the
installed ``.msg`` files of each package (ament index), dependencies appended as rosbag2 does.

    <Type.msg text>
    ================================================================================
    MSG: pkg/Dependency
    <Dependency.msg text>
    ...

``tf2_msgs/TFMessage`` has a built-in definition (one field), so TF can be written even where the
``tf2_msgs`` package is not installed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring",
}  # fmt: skip
BUILTIN = {"tf2_msgs/TFMessage": "geometry_msgs/TransformStamped[] transforms\n"}
SEPARATOR = "=" * 80


def _normalise(type_name: str) -> str:
    """``pkg/msg/Type`` or ``pkg/Type`` -> ``pkg/Type``."""
    parts = type_name.split("/")
    return f"{parts[0]}/{parts[-1]}"


@lru_cache(maxsize=None)
def msg_text(type_name: str) -> str:
    """The ``.msg`` file text of ``pkg/Type``.

    Raises:
        FileNotFoundError: the package or message is not installed (names the type and the path
            tried).
    """
    type_name = _normalise(type_name)
    if type_name in BUILTIN:
        return BUILTIN[type_name]
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    package, name = type_name.split("/")
    try:
        path = Path(get_package_share_directory(package)) / "msg" / f"{name}.msg"
    except PackageNotFoundError as err:
        raise FileNotFoundError(
            f"[msgdef] package '{package}' of {type_name} is not installed"
        ) from err
    if not path.is_file():
        raise FileNotFoundError(f"[msgdef] no definition of {type_name} at {path}")
    return path.read_text()


def _dependencies(type_name: str) -> list[str]:
    """Message types used by the fields of ``type_name`` (``pkg/Type``), in field order."""
    package = type_name.split("/")[0]
    found = []
    for line in msg_text(type_name).splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        tokens = line.split(maxsplit=1)
        if len(tokens) < 2 or "=" in tokens[1]:
            continue  # a constant ("uint8 NOSE = 0"); bounded types keep "<=" in tokens[0]
        base = re.sub(r"\[.*\]$", "", tokens[0])
        base = re.sub(r"<=\d+$", "", base)
        if base in PRIMITIVES:
            continue
        if base == "Header":
            found.append("std_msgs/Header")
        else:
            found.append(_normalise(base) if "/" in base else f"{package}/{base}")
    return found


def full_definition(type_name: str) -> str:
    """``type_name``'s definition followed by every nested type's, each once (depth-first)."""
    type_name = _normalise(type_name)
    seen: list[str] = []

    def visit(t: str) -> None:
        for dep in _dependencies(t):
            if dep not in seen:
                seen.append(dep)
                visit(dep)

    visit(type_name)
    parts = [msg_text(type_name).rstrip("\n")]
    parts += [f"{SEPARATOR}\nMSG: {dep}\n{msg_text(dep).rstrip()}" for dep in seen]
    return "\n".join(parts) + "\n"
