"""TensorRT engine cache: engines are keyed by GPU name + TensorRT version + ONNX hash, so they are
never rebuilt needlessly and never reused where they would be wrong (pure Python; TensorRT is not
needed here).

An engine is only valid for the GPU model and TensorRT release that built it, and for the exact
graph, precision and optimization profile. All of these go into ``EngineKey``; the file name
carries a readable prefix plus a digest of the full key, and a JSON sidecar stores the full key so
that a digest collision or a hand-copied file is detected instead of silently loaded. Writes are
atomic (temp file + rename), so a crash mid-write never leaves a truncated engine behind. Isaac ROS
names: ``engine_file_path`` is what ``EngineCache.path_for`` returns; ``force_engine_update`` skips
the lookup.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


def default_cache_dir() -> Path:
    """``$MAHMR_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/mahmr_ros/engines`` (``~/.cache`` by
    default)."""
    if os.environ.get("MAHMR_ENGINE_CACHE"):
        return Path(os.environ["MAHMR_ENGINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mahmr_ros" / "engines"


def _slug(text: str) -> str:
    """File-name-safe lower-case slug ("NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3")."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on.

    Attributes:
        stage: stage name (``scale_map``, ``lvl0``, ``encoder``, ``decoder``).
        gpu_name: CUDA device name (``torch.cuda.get_device_name``).
        trt_version: ``tensorrt.__version__``.
        onnx_sha256: hash of the ONNX graph the engine is built from.
        precision: ``fp32`` / ``fp16`` / ``bf16`` builder precision.
        profile: input name -> (min, opt, max) shapes of the optimization profile, as nested
            tuples.
    """

    stage: str
    gpu_name: str
    trt_version: str
    onnx_sha256: str
    precision: str
    profile: tuple

    def digest(self) -> str:
        """Hex sha256 of the canonical JSON form of the key."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def filename(self) -> str:
        """``<stage>-<precision>-<gpu>-trt<version>-<digest16>.engine``."""
        return (
            f"{self.stage}-{self.precision}-{_slug(self.gpu_name)}-trt{_slug(self.trt_version)}-"
            f"{self.digest()[:16]}.engine"
        )


def profile_tuple(profile: dict[str, tuple]) -> tuple:
    """Canonical hashable form of a profile dict: sorted ((name, ((min...), (opt...), (max...))),
    ...)."""
    return tuple(
        sorted(
            (name, tuple(tuple(int(d) for d in s) for s in shapes))
            for name, shapes in profile.items()
        )
    )


class EngineCache:
    """A directory of serialized engines plus the TensorRT timing cache.

    Args:
        cache_dir: where engines live (created on first store); None = ``default_cache_dir()``.
    """

    def __init__(self, cache_dir: str | Path | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def path_for(self, key: EngineKey) -> Path:
        """The engine file for a key (it may not exist yet)."""
        return self.cache_dir / key.filename()

    def timing_cache_path(self, gpu_name: str, trt_version: str) -> Path:
        """Timing cache shared by all builds on one GPU model + TensorRT release (speeds up
        rebuilds)."""
        return self.cache_dir / f"timing-{_slug(gpu_name)}-trt{_slug(trt_version)}.cache"

    def load(self, key: EngineKey) -> bytes | None:
        """The cached engine bytes, or None when absent or when its sidecar key does not match
        exactly."""
        path = self.path_for(key)
        sidecar = path.with_suffix(".json")
        if not path.is_file() or not sidecar.is_file():
            return None
        try:
            stored = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if stored != json.loads(json.dumps(asdict(key))):
            return None
        return path.read_bytes()

    def store(self, key: EngineKey, engine: bytes) -> Path:
        """Write an engine and its sidecar atomically; returns the engine path.

        Raises:
            PermissionError / OSError: the cache directory is not writable (message names it).
        """
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self.path_for(key)
            self._atomic_write(path, bytes(engine))
            self._atomic_write(
                path.with_suffix(".json"), json.dumps(asdict(key), indent=1).encode()
            )
        except OSError as err:
            raise OSError(
                f"[runtime.engine_cache] engine cache not writable: {self.cache_dir} ({err}); set "
                "cache_dir or MAHMR_ENGINE_CACHE"
            ) from err
        return path

    def store_timing_cache(self, path: Path, data: bytes) -> None:
        """Atomically replace the timing cache."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._atomic_write(path, bytes(data))

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
