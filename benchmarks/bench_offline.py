"""FPS and per-stage CPU time of the offline default estimator (BlazePose + Anny fit) at 640x480.

    OMP_NUM_THREADS=2 tools/env.sh python benchmarks/bench_offline.py [--repeat 20] [--threads 2]

Frames: the bundled sample (3 people, ``mahmr_ros.offline.sample``) and a 1-person frame cut from it (the
leftmost person pasted onto the empty room). Each frame runs through the whole ``Pipeline`` (estimator, DTO
``prior_only``, tracking) in two modes:

* ``image``: every frame searched from scratch (``rescan_every=1``, the default; HOG + BlazePose crops + one
  BlazePose scan of the masked frame).
* ``video``: ``rescan_every=5``, BlazePose follows the last frame's boxes and the full search runs every 5th
  frame (what ``python -m mahmr_ros.cli live`` uses).

It also checks accuracy on the sample: people found vs present, height and depth error per person against
the render's ground truth. Prints a table and writes ``benchmarks/results/offline_cpu.json``. The machine is
shared; the median frame time is reported next to the mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# The source tree first: a colcon install of the package may also be on the path (tools/env.sh).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def one_person_frame(image: np.ndarray, K: np.ndarray, person: dict) -> np.ndarray:
    """The sample's empty room with only ``person`` (ground-truth dict) pasted back in."""
    from mahmr_ros.offline.sample import _background

    h, w = image.shape[:2]
    frame = _background(w, h, K[1, 2]).astype(np.uint8)
    x0, y0, x1, y1 = np.round(person["bbox_xyxy"]).astype(int) + [-6, -6, 6, 6]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    frame[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return frame


def run(pipe, image, K, repeat: int) -> dict:
    """Time ``repeat`` frames after one warm-up; returns mean/median ms per stage and the last result."""
    result = pipe.process(image, K)  # warm-up (first BlazePose call builds its graph)
    stages: dict[str, list[float]] = {}
    for i in range(repeat):
        result = pipe.process(image, K, stamp=float(i) / 30.0)
        for key, ms in result.timings_ms.items():
            stages.setdefault(key, []).append(ms)
    total = stages["total"]
    return {
        "fps_mean": 1e3 / statistics.mean(total),
        "fps_median": 1e3 / statistics.median(total),
        "ms_mean": {k: round(statistics.mean(v), 1) for k, v in stages.items()},
        "ms_median": {k: round(statistics.median(v), 1) for k, v in stages.items()},
        "people": len(result.humans),
        "result": result,
    }


def accuracy(result, truth: list[dict]) -> list[dict]:
    """Match found people to the truth by pelvis reprojection; height and depth errors per true person."""
    K = result.K_used
    rows = []
    for person in truth:
        p = np.array(person["pelvis_cam"])
        uv_true = (K @ p)[:2] / p[2]
        best = None
        for h in result.humans:
            uv = (K @ h.pelvis)[:2] / h.pelvis[2]
            d = np.linalg.norm(uv - uv_true)
            if d < 30 and (best is None or d < best[0]):
                best = (d, h)
        row = {"true_height_m": round(person["height_m"], 3), "true_depth_m": round(p[2], 3), "found": best}
        if best is not None:
            h = best[1]
            row.update(
                found=True,
                height_m=round(h.height_m, 3),
                height_err_m=round(h.height_m - person["height_m"], 3),
                depth_m=round(float(h.pelvis[2]), 3),
                depth_err_m=round(float(h.pelvis[2]) - p[2], 3),
            )
        else:
            row["found"] = False
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "offline_cpu.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from mahmr_ros.offline.sample import load_sample
    from mahmr_ros.pipeline import Pipeline

    image, K, info = load_sample()
    frames = {1: one_person_frame(image, K, info["people"][0]), 3: image}
    truths = {1: info["people"][:1], 3: info["people"]}
    report = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "repeat": args.repeat,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "runs": [],
    }
    for mode, rescan in (("image", 1), ("video", 5)):
        pipe = Pipeline.from_config({"estimator": "offline", "offline": {"rescan_every": rescan}})
        for n in (1, 3):
            t0 = time.perf_counter()
            r = run(pipe, frames[n], K, args.repeat)
            row = {"mode": mode, "people_present": n, "people_found": r["people"]}
            row.update({k: v for k, v in r.items() if k not in ("result", "people")})
            row["fps_mean"], row["fps_median"] = round(row["fps_mean"], 2), round(row["fps_median"], 2)
            row["accuracy"] = accuracy(r["result"], truths[n])
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            report["runs"].append(row)
            stages = ", ".join(f"{k} {v}" for k, v in row["ms_median"].items())
            print(
                f"{mode:5s} {n} person(s): found {row['people_found']}/{n}, "
                f"{row['fps_mean']:.1f} FPS mean, {row['fps_median']:.1f} median | median ms: {stages}"
            )
            for a in row["accuracy"]:
                print(f"      truth {a}")
        pipe.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
