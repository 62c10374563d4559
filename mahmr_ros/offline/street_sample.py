"""A real multi-person scene for ``make demo``: a frame of OpenCV's pedestrian video, fetched at
setup.

``vtest.avi`` (768x576, 10 fps, 795 frames; a raised camera over a campus walkway, 3-9 people
35-190 px tall) is one of OpenCV's sample files (``samples/data``, Apache-2.0). It is not in any
wheel, so setup downloads the ``opencv-python`` source distribution from PyPI with ``pip download``
(no URL of ours: pip's own index), extracts that one file into the offline cache
(``build/offline/vtest.avi``, ~8 MB) and drops the ~95 MB archive. The demo frame
(:data:`DEMO_FRAME`, 8 people) is saved next to it as a PNG. Nothing is fetched at run time:
without the cache, the demo shows the synthetic sample (:mod:`mahmr_ros.offline.sample`).

``benchmarks/real_data.py`` uses the same fetch for its footage.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from mahmr_ros.offline.assets import assets_dir

#: Pinned source distribution holding ``opencv/samples/data/vtest.avi`` (pip requirement string).
OPENCV_SDIST = "opencv-python==4.10.0.84"
#: The frame of vtest.avi (decode order) the demo shows: 8 people walking, crossing, 50-110 px
#: tall.
DEMO_FRAME = 720
VTEST_SOURCE = (
    f"vtest.avi frame {DEMO_FRAME}: OpenCV samples/data (Apache-2.0), from the {OPENCV_SDIST} "
    "source distribution on PyPI"
)


class FetchError(RuntimeError):
    """The real scene could not be fetched; the message says why and what it needs."""


def vtest_path() -> Path:
    """Where setup caches ``vtest.avi`` (it may not exist)."""
    return assets_dir() / "vtest.avi"


def demo_frame_path() -> Path:
    """Where setup caches the demo frame as a PNG (it may not exist)."""
    return assets_dir() / f"vtest_{DEMO_FRAME}.png"


def fetch_vtest(dest: Path | None = None) -> Path:
    """``vtest.avi`` at ``dest`` (default :func:`vtest_path`): kept if present, else fetched with
    pip.

    Raises:
        FetchError: pip could not download the source distribution (no network, no pip) or it holds
            no ``vtest.avi``; the message names the command that failed.
    """
    dest = Path(dest) if dest is not None else vtest_path()
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    name = OPENCV_SDIST.split("==")[0]
    # only this package as source: its build requirements come as wheels, so pip prepares the
    # sdist's metadata without compiling anything
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, "-d"]
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        try:
            subprocess.run([*cmd, tmp, OPENCV_SDIST], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as err:
            detail = getattr(err, "stderr", "") or str(err)
            raise FetchError(
                f"[offline] `pip download --no-binary {name} {OPENCV_SDIST}` failed "
                f"({detail.strip()[-300:]}); it needs pip and access to PyPI"
            ) from err
        archives = sorted(Path(tmp).glob("*.tar.gz"))
        if not archives:
            raise FetchError(f"[offline] pip download {OPENCV_SDIST} left no source archive")
        with tarfile.open(archives[-1], "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.name.endswith("samples/data/vtest.avi")), None
            )
            if member is None:
                raise FetchError(f"[offline] {archives[-1].name} holds no samples/data/vtest.avi")
            with tar.extractfile(member) as src:
                part = dest.with_suffix(".part")
                part.write_bytes(src.read())
        part.replace(dest)  # atomic: a half-written file never looks like a cache
    return dest


def read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the given frame indices (decode order) of a video: {index: (H, W, 3) uint8 BGR}.

    Raises:
        ValueError: the video has fewer frames than asked for.
    """
    import cv2

    wanted, frames = set(indices), {}
    cap = cv2.VideoCapture(str(path))
    index = 0
    while wanted - set(frames):
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            frames[index] = frame
        index += 1
    cap.release()
    missing = sorted(wanted - set(frames))
    if missing:
        raise ValueError(f"[offline] {path} has no frames {missing} (it has {index})")
    return frames


def build_demo_frame() -> Path:
    """Fetch ``vtest.avi`` if needed and save the demo frame as a PNG (idempotent); returns the
    PNG's path.

    Raises:
        FetchError: see :func:`fetch_vtest`.
    """
    import cv2

    png = demo_frame_path()
    if png.is_file():
        return png
    frame = read_frames(fetch_vtest(), [DEMO_FRAME])[DEMO_FRAME]
    if not cv2.imwrite(str(png), frame):
        raise FetchError(f"[offline] cannot write {png}")
    return png


def load_demo_frame() -> np.ndarray | None:
    """The cached demo frame (576, 768, 3) uint8 BGR, or None when setup could not fetch it."""
    import cv2

    png = demo_frame_path()
    return cv2.imread(str(png), cv2.IMREAD_COLOR) if png.is_file() else None
