"""Engine cache keys and storage (pure Python; TensorRT not needed)."""

from __future__ import annotations

import dataclasses

import pytest

from mahmr_ros.runtime.engine_cache import EngineCache, EngineKey, default_cache_dir, profile_tuple

PROFILE = profile_tuple({"tokens": ((1, 2, 64), (1, 100, 64), (1, 500, 64))})


def key(**changes) -> EngineKey:
    base = EngineKey("encoder", "NVIDIA H100 80GB HBM3", "10.3.0", "ab" * 32, "fp16", PROFILE)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "change",
    [
        {"gpu_name": "NVIDIA H200"},
        {"trt_version": "10.4.0"},
        {"onnx_sha256": "cd" * 32},
        {"precision": "fp32"},
        {"stage": "decoder"},
        {"profile": profile_tuple({"tokens": ((1, 2, 64), (1, 100, 64), (1, 600, 64))})},
    ],
)
def test_every_dependency_changes_the_key(change):
    assert key(**change).digest() != key().digest()
    assert key(**change).filename() != key().filename()


def test_key_is_stable_and_readable():
    assert key().digest() == key().digest()
    name = key().filename()
    assert name.startswith("encoder-fp16-nvidia-h100-80gb-hbm3-trt10.3.0-") and name.endswith(
        ".engine"
    )


def test_profile_tuple_is_order_independent():
    a = profile_tuple({"a": ((1,), (2,), (3,)), "b": ((4,), (5,), (6,))})
    b = profile_tuple({"b": ((4,), (5,), (6,)), "a": ((1,), (2,), (3,))})
    assert a == b and hash(a) == hash(b)


def test_store_then_load_round_trip_and_miss_on_other_key(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    assert cache.load(key()) is None
    path = cache.store(key(), b"engine-bytes")
    assert path.is_file() and path.parent == tmp_path / "engines"
    assert cache.load(key()) == b"engine-bytes"
    assert cache.load(key(trt_version="10.4.0")) is None
    assert not list((tmp_path / "engines").glob("*.tmp"))


def test_a_file_whose_sidecar_disagrees_is_not_loaded(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store(key(), b"engine-bytes")
    path.with_suffix(".json").write_text('{"stage": "encoder"}')
    assert cache.load(key()) is None


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="engine cache not writable"):
        EngineCache(blocker / "engines").store(key(), b"x")


def test_timing_cache_path_depends_on_gpu_and_version(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.timing_cache_path("A100", "10.3") != cache.timing_cache_path("H100", "10.3")
    assert cache.timing_cache_path("H100", "10.3") != cache.timing_cache_path("H100", "10.4")


def test_default_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAHMR_ENGINE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("MAHMR_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mahmr_ros" / "engines"
