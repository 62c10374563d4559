"""The compact Anny cache: loading never builds, and a missing or foreign file names itself."""

from __future__ import annotations

import pytest

from mahmr_ros.offline import assets
from mahmr_ros.offline.assets import AssetError, load_anny_model, model_path


def test_assets_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    assert model_path() == tmp_path / assets.MODEL_FILENAME


def test_missing_cache_raises_asset_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(AssetError) as err:
        load_anny_model()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / assets.MODEL_FILENAME) in message
    assert "mahmr_ros.offline.assets" in message  # says how to build it


def test_foreign_file_raises_asset_error(tmp_path):
    bad = tmp_path / "anny_model_data.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(AssetError, match="cannot read .*anny_model_data.pt"):
        load_anny_model(bad)


def test_estimator_without_cache_fails_clearly(tmp_path, monkeypatch):
    from mahmr_ros.offline.estimator import OfflineEstimator

    monkeypatch.setenv("MAHMR_OFFLINE_DIR", str(tmp_path))
    with pytest.raises(AssetError, match="anny_model_data.pt"):
        OfflineEstimator(warmup=False)


def test_cached_model_loads(anny_body):
    # the session body came from the cache; it must be the full Anny mesh
    assert anny_body.num_vertices == 13718
    assert anny_body.faces.shape == (27420, 3)


def test_cache_of_another_anny_version_is_rejected(tmp_path):
    import torch

    old = tmp_path / "anny_model_data.pt"
    torch.save({"anny_version": "0.0.1", "model_data": None, "from_data_options": {}}, old)
    with pytest.raises(AssetError, match="built with anny 0.0.1"):
        load_anny_model(old)


def test_build_is_skipped_when_the_cache_is_current():
    # a second `make setup` must not import anny or rebuild: the version marker short-circuits it
    path = model_path()
    assert assets._built_with_installed_anny(path)
    mtime = path.stat().st_mtime_ns
    assert assets.build_model_file() == path
    assert path.stat().st_mtime_ns == mtime
