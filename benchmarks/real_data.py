"""Real footage for the benchmarks: fetched from PyPI with pip, cached in ``build/bench_data``, not
in git.

* ``vtest.avi``: OpenCV's pedestrian sample video (768x576, 795 frames, raised camera, 3-8 people),
  from the ``opencv-python`` source distribution's ``opencv/samples/data`` (OpenCV, Apache-2.0).
* ``astronaut.png``: scikit-image's ``astronaut`` (NASA photo of Eileen Collins, public domain),
  from the scikit-image wheel.

Our hand-checked person boxes for these live in ``benchmarks/data/people_boxes.json`` (our own
annotations).

    tools/env.sh python benchmarks/real_data.py  # fetch both (about 110 MB of downloads, once)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mahmr_ros.offline.street_sample import OPENCV_SDIST, fetch_vtest, read_frames  # noqa: E402, F401

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench_data"
#: Pinned sources (pip requirement strings; OPENCV_SDIST comes from
#: mahmr_ros.offline.street_sample).
SKIMAGE_WHEEL = "scikit-image==0.26.0"
LABELS = ROOT / "benchmarks" / "data" / "people_boxes.json"


def _pip_download_wheel(requirement: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    only_wheels = ["--no-deps", "--only-binary", ":all:"]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        *only_wheels,
        "-d",
        str(dest),
        requirement,
    ]
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob("*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download {requirement} left no wheel in {dest}")
    return found[-1]


def vtest_path() -> Path:
    """Path of ``vtest.avi`` in the cache, fetched on first use (the core's fetch: pip download of
    the opencv-python sdist, ``mahmr_ros.offline.street_sample``)."""
    return fetch_vtest(CACHE / "vtest.avi")


def astronaut_path() -> Path:
    """Path of scikit-image's ``astronaut.png`` in the cache, fetched on first use (pip download,
    wheel)."""
    path = CACHE / "astronaut.png"
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download_wheel(SKIMAGE_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            CACHE.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read("skimage/data/astronaut.png"))
    return path


def read_vtest_frames(indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the given frame indices of ``vtest.avi``: {index: (576, 768, 3) uint8 BGR}."""
    return read_frames(vtest_path(), indices)


def load_labelled_images() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Every labelled image: (name, (H, W, 3) uint8 BGR, (P, 4) people, (Q, 4) ignore), boxes xyxy
    px."""
    import json

    import cv2

    labels = json.loads(LABELS.read_text())
    out = []
    vtest = labels["vtest.avi"]
    ignore = {int(k): v for k, v in vtest.get("ignore", {}).items()}
    boxes = {int(k): v for k, v in vtest["frames"].items()}
    for index, frame in sorted(read_vtest_frames(sorted(boxes)).items()):
        people = np.array(boxes[index], float).reshape(-1, 4)
        out.append(
            (
                f"vtest#{index}",
                frame,
                people,
                np.array(ignore.get(index, []), float).reshape(-1, 4),
            )
        )
    astro = cv2.imread(str(astronaut_path()), cv2.IMREAD_COLOR)
    people = np.array(labels["astronaut.png"]["boxes"], float).reshape(-1, 4)
    out.append(("astronaut", astro, people, np.zeros((0, 4))))
    return out


if __name__ == "__main__":
    print(vtest_path())
    print(astronaut_path())
