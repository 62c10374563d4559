"""Make the build-machine paths baked into the ROS 2 wheels' CMake exports exist on this machine.

The ``ros-jazzy-*`` wheels export CMake targets whose INTERFACE_INCLUDE_DIRECTORIES name
directories of the machine that built them (``/opt/python/cp311-cp311/include/python3.11`` and that
interpreter's numpy include dir). CMake refuses to configure when they are missing. We find every
such path in the venv's CMake files and symlink it to this interpreter's real include dir / numpy
include dir. Idempotent; needs write access to /opt (root, as in CI) or prints the two commands a
user can run with sudo.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from pathlib import Path


def wanted_links(prefix: Path) -> dict[Path, Path]:
    import numpy

    links: dict[Path, Path] = {}
    pattern = re.compile(r"(/opt/python/[^;\"\s]+)")
    for cmake_file in (prefix / "share").rglob("*.cmake"):
        try:
            text = cmake_file.read_text(errors="ignore")
        except OSError:
            continue
        for path in pattern.findall(text):
            path = Path(path.rstrip(")"))
            if "numpy" in path.parts:
                links[path] = Path(numpy.get_include())
            elif path.name.startswith("python3") and path.parent.name == "include":
                links[path] = Path(sysconfig.get_paths()["include"])
    return links


def numpy_include_outside(source_dir: Path) -> str:
    """numpy's include dir by a path outside ``source_dir``.

    CMake refuses to export targets whose include dirs lie inside the source tree, and a
    project-local venv puts numpy there. We point a per-checkout link in the user's cache dir at it
    (several checkouts, each with its own venv, can coexist).
    """
    import hashlib

    import numpy

    real = Path(numpy.get_include()).resolve()
    source_dir = source_dir.resolve()
    if not real.is_relative_to(source_dir):
        return str(real)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mahmr_ros"
    link = cache / f"numpy-include-{hashlib.sha1(str(source_dir).encode()).hexdigest()[:10]}"
    if not (link.is_symlink() and link.resolve() == real):
        cache.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(real, link)
    return str(link)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--numpy-include":
        print(numpy_include_outside(Path(sys.argv[2] if len(sys.argv) > 2 else ".")))
        return 0
    prefix = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    failed = []
    for link, target in sorted(wanted_links(prefix).items()):
        if link.exists():  # present (a dir, or a link resolving to one): leave it
            continue
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():  # dangling: its venv was deleted
                link.unlink()
            os.symlink(target, link)
            print(f"[setup] linked {link} -> {target} (ROS wheel CMake quirk)")
        except OSError as err:
            failed.append((link, target, err))
    for link, target, err in failed:
        print(
            f"[setup] cannot create {link} ({err}); run: sudo mkdir -p {link.parent} && "
            f"sudo ln -s {target} {link}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
