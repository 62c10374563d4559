#!/usr/bin/env python3
"""Regenerate config/mahmr.yaml from the parameter table in mahmr_ros/ros/params.py (run after editing it).

The YAML is committed (users read and copy it); test/test_static.py fails when the two disagree.
"""

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mahmr_ros.ros.params import PARAMETERS  # noqa: E402

HEADER = """\
# mahmr node parameters (ROS 2 params file; also accepted by Pipeline.from_config).
# Every key is declared by mahmr_ros/ros/params.py with the same description and range;
# test/test_static.py checks that the two agree (regenerate with tools/write_params_yaml.py).
# Read-only keys apply at start-up only.
mahmr:
  ros__parameters:"""


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def main() -> None:
    lines = HEADER.splitlines()
    for spec in PARAMETERS:
        text = spec.description
        if spec.min_value is not None:
            text += f" [{spec.min_value:g} .. {spec.max_value:g}]"
        if spec.read_only:
            text += " (start-up only)"
        lines += ["    # " + line for line in textwrap.wrap(text, 100)]
        lines.append(f"    {spec.name}: {_value(spec.default)}")
    (ROOT / "config" / "mahmr.yaml").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
