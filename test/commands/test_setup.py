"""``mahmr_setup`` (``python -m mahmr_ros.cli setup``) run the way a colcon workspace installs it.

The package is copied into an install-tree layout (``lib/mahmr_ros/mahmr_setup`` and
``lib/python3.X/site-packages/mahmr_ros``, as CMakeLists.txt installs them) and the script is run
from there with only that tree on the path, so it finds no source checkout and uses the install
default for its assets. Building the Anny model for real takes ~1 min and ~800 MB: here the build
step meets the assets ``make setup`` already built (``build/offline``) and must return at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "build" / "offline"


@pytest.fixture(scope="module")
def install_tree(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("install")
    site = prefix / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    shutil.copytree(
        ROOT / "mahmr_ros", site / "mahmr_ros", ignore=shutil.ignore_patterns("__pycache__", "ros")
    )
    (prefix / "lib" / "mahmr_ros").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "mahmr_setup", prefix / "lib" / "mahmr_ros" / "mahmr_setup")
    return prefix


def _run(prefix: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    site = prefix / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    keep = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "MAHMR_OFFLINE_DIR", "ANNY_CACHE_DIR")
    }
    env = {**keep, "PYTHONPATH": str(site), "HOME": str(prefix / "home"), **env_extra}
    script = prefix / "lib" / "mahmr_ros" / "mahmr_setup"
    return subprocess.run([sys.executable, str(script), *args], env=env, cwd=prefix,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_check_in_an_install_tree_names_the_missing_assets_and_where_they_go(install_tree):
    result = _run(install_tree, "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    expected = install_tree / "home" / ".cache" / "mahmr_ros" / "offline" / "anny_model_data.pt"
    assert f"missing {expected}" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    not (BUILT / "anny_model_data.pt").is_file(), reason="offline assets not built (make setup)"
)
def test_setup_in_an_install_tree_finds_built_assets_and_returns(install_tree):
    check = _run(install_tree, "--check", MAHMR_OFFLINE_DIR=str(BUILT))
    assert check.returncode == 0 and check.stdout.count("ready") == 2, check.stdout + check.stderr
    build = _run(install_tree, MAHMR_OFFLINE_DIR=str(BUILT))
    assert build.returncode == 0, build.stdout + build.stderr
    assert "[offline] Anny model:" in build.stdout and "[offline] sample image:" in build.stdout


def test_missing_packages_are_named_with_the_pip_command(monkeypatch, capsys):
    from mahmr_ros import cli
    from mahmr_ros.commands import setup

    monkeypatch.setitem(setup.REQUIRED, "no_such_module_xyz", "no-such-package")
    assert cli.main(["setup", "--check"]) == 1
    out = capsys.readouterr().out
    assert (
        "missing Python packages: no-such-package" in out
        and "requirements/colcon/constraints.txt" in out
    )
