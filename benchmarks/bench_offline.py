"""FPS and per-stage CPU time of the offline default estimator (NanoDet + MoveNet + Anny fit) at
640x480.

    OMP_NUM_THREADS=2 tools/env.sh python benchmarks/bench_offline.py [--repeat 20] [--threads 2]
        [--modes image,floor,video,video_nofloor] [--skip-children] [--out FILE]

Frames: the bundled sample (3 people, ``mahmr_ros.offline.sample``) and a 1-person frame cut from
it (the leftmost person pasted onto the empty room). Each frame runs through the whole ``Pipeline``
(estimator, DTO ``prior_only``, tracking) in three modes:

* ``image``: every frame searched from scratch (``rescan_every=1``, the default; NanoDet +
  MoveNet).
* ``video``: ``rescan_every=5``, MoveNet follows the last frame's boxes and the full search runs
  every 5th frame (what ``python -m mahmr_ros.cli live`` uses). The floor is estimated from the
  people's feet, pooled over frames (``mahmr_ros.offline.crowd_floor``), as in ``image`` (per frame
  there).
* ``video_nofloor``: ``video`` without the floor estimate (``estimate_floor=False``): the A/B of
  its cost.
* ``floor``: as ``image`` with the camera height given (``camera_height_m``, the render's 1.2 m):
  people are sized by their feet on the floor (``mahmr_ros.offline.floor``).

It also checks accuracy on the sample: people found vs present, height and depth error per person
against the render's ground truth. ``children``: the estimator alone (no DTO) on
:data:`CHILD_SCENES`, six more renders of children (Anny age 0.15-0.35, 1.00-1.44 m) and adults at
2.6-5.2 m, without a floor, with the floor estimated from each render's three people, and with the
camera height: height and depth errors per group and how often ``is_child`` is right.
``benchmarks/bench_floor.py`` measures the crowd floor estimate over many people and frames.

Prints a table and writes ``benchmarks/results/offline_cpu.json``. The machine is
shared; the median frame time is reported next to the mean.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# The source tree first: a colcon install of the package may also be on the path (tools/env.sh).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one_person_frame(image: np.ndarray, K: np.ndarray, person: dict) -> np.ndarray:
    """The sample's empty room with only ``person`` (ground-truth dict) pasted back in."""
    from mahmr_ros.offline.sample import _background

    h, w = image.shape[:2]
    frame = _background(w, h, K[1, 2]).astype(np.uint8)
    x0, y0, x1, y1 = np.round(person["bbox_xyxy"]).astype(int) + [-6, -6, 6, 6]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    frame[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return frame


#: Untimed frames before timing: one full video cycle (search + 4 followed frames + the next
#: search), so every BlazePose graph the steady state uses (the search's, one per HOG crop, one
#: tracking graph per person) has run once; a graph's first call costs ~150 ms (MediaPipe
#: initialisation), once per process.
WARMUP_FRAMES = 6


def run(pipe, image, K, repeat: int) -> dict:
    """Time ``repeat`` frames after the warm-up; returns mean/median ms per stage and the last
    result."""
    for _ in range(WARMUP_FRAMES):
        result = pipe.process(image, K)
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


def match_by_pelvis(humans, pelvis_cam, K, max_px: float = 30.0):
    """The found person whose pelvis projects nearest to the true pelvis ``pelvis_cam`` (3,) m, if
    within ``max_px`` pixels, else None."""
    from mahmr_ros.geometry import project

    if not humans:
        return None
    uv_found = project(np.array([h.pelvis for h in humans], np.float64), K)
    dist_px = np.linalg.norm(uv_found - project(np.asarray(pelvis_cam, np.float64), K), axis=1)
    nearest = int(np.argmin(dist_px))
    return humans[nearest] if dist_px[nearest] < max_px else None


def accuracy(result, truth: list[dict]) -> list[dict]:
    """Match found people to the truth by pelvis reprojection; height and depth errors per true
    person."""
    K = result.K_used
    rows = []
    for person in truth:
        p = np.array(person["pelvis_cam"])
        h = match_by_pelvis(result.humans, p, K)
        row = {"true_height_m": round(person["height_m"], 3), "true_depth_m": round(p[2], 3)}
        if h is not None:
            row.update(
                found=True,
                height_m=round(h.height_m, 3),
                height_err_m=round(h.height_m - person["height_m"], 3),
                depth_m=round(float(h.pelvis[2]), 3),
                depth_err_m=round(float(h.pelvis[2]) - p[2], 3),
                is_child=bool(h.is_child),
            )
        else:
            row["found"] = False
        rows.append(row)
    return rows


#: Extra renders: (Anny age, depth m) of three people at x = -1.1, 0, 1.1 (scaled with depth), yaws
#: alternate.
CHILD_SCENES = (
    ((0.15, 3.9), (0.50, 3.0), (0.28, 3.4)),
    ((0.22, 4.8), (0.62, 4.0), (0.35, 4.6)),
    ((0.75, 3.5), (0.15, 3.4), (0.22, 3.0)),
    ((0.28, 3.1), (0.35, 4.6), (0.62, 3.9)),
    ((0.50, 5.1), (0.22, 4.0), (0.75, 3.0)),
    ((0.35, 3.9), (0.28, 4.2), (0.15, 4.2)),
)


def children(camera_height_m: float) -> dict:
    """Height/depth errors of children and adults on :data:`CHILD_SCENES`: no floor
    (``landmarks``), the floor estimated from each render's three people alone (``crowd``, the
    default), the camera height given (``floor``)."""
    from mahmr_ros.offline.estimator import OfflineEstimator
    from mahmr_ros.offline.floor import FloorSizer
    from mahmr_ros.offline.keypoints import fit_targets
    from mahmr_ros.offline.sample import ScenePerson, render_sample

    est = OfflineEstimator()
    rows = {"landmarks": [], "crowd": [], "floor": []}
    for scene in CHILD_SCENES:
        people = [
            ScenePerson(age, x * z / 3.5, z, 15.0 * (-1) ** i, (60, 150, 60), (120, 80, 50))
            for i, ((age, z), x) in enumerate(zip(scene, (-1.1, 0.0, 1.1)))
        ]
        image, info = render_sample(people=people, body=est.body)
        K = np.array(info["K"])
        for name in rows:
            est.estimate_floor = name != "landmarks"
            est.set_floor(camera_height_m if name == "floor" else None)
            result = est.estimate(image, K)
            for truth, row in zip(info["people"], accuracy(result, info["people"])):
                row["is_child_true"] = truth["is_child"]
                rows[name].append(row)
    est.estimate_floor = True
    est.set_floor(None)
    # the floor step's own cost (the frame timings above swing with the shared machine's load):
    # sizing the last scene's fitted people, 1 and 3 at a time
    floor = FloorSizer(est.body, camera_height_m)
    found = est.source.find(image, K)
    world, uv, conf, _ = fit_targets(found, image.shape[1::-1])
    fit = est.fitter.fit(world, uv, conf, K)
    floor_ms = {}
    for n in (1, 3):
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            floor.size(
                fit.R_cam_anny[:n],
                fit.bone_aa[:n],
                uv[:n],
                conf[:n],
                K,
                image_wh=image.shape[1::-1],
            )
            times.append((time.perf_counter() - t0) * 1e3)
        floor_ms[f"{n}_people"] = round(statistics.median(times), 2)
    est.close()
    summary = {}
    for name, group in rows.items():
        for kind, is_kid in (("children", True), ("adults", False)):
            g = [r for r in group if r["is_child_true"] == is_kid]
            found = [r for r in g if r["found"]]
            dh = np.abs([r["height_err_m"] for r in found])
            dz = np.abs([r["depth_err_m"] / r["true_depth_m"] for r in found])
            summary[f"{name}/{kind}"] = {
                "people": len(g),
                "found": len(found),
                "height_abs_err_m_mean": round(float(dh.mean()), 3),
                "height_abs_err_m_max": round(float(dh.max()), 3),
                "depth_abs_err_pct_mean": round(100 * float(dz.mean()), 1),
                "depth_abs_err_pct_max": round(100 * float(dz.max()), 1),
                "is_child_right": sum(r["is_child"] == is_kid for r in found),
            }
    return {"summary": summary, "floor_size_ms_median": floor_ms, "people": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "offline_cpu.json")
    )
    parser.add_argument(
        "--modes", default="image,floor,video,video_nofloor", help="comma-separated subset to run"
    )
    parser.add_argument(
        "--skip-children", action="store_true", help="skip the children accuracy renders"
    )
    args = parser.parse_args()
    known = {"image", "floor", "video", "video_nofloor"}
    unknown = set(args.modes.split(",")) - known
    if unknown:
        parser.error(f"unknown --modes {sorted(unknown)} (known: {', '.join(sorted(known))})")

    import torch

    torch.set_num_threads(args.threads)
    from mahmr_ros.offline.sample import load_sample
    from mahmr_ros.pipeline import Pipeline
    from mahmr_ros.runtime.backend import cpu_name

    image, K, info = load_sample()
    frames = {1: one_person_frame(image, K, info["people"][0]), 3: image}
    truths = {1: info["people"][:1], 3: info["people"]}
    report = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "repeat": args.repeat,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "runs": [],
    }
    from mahmr_ros.offline.sample import CAMERA_HEIGHT_M

    modes = (
        ("image", {"rescan_every": 1}),
        ("floor", {"rescan_every": 1, "camera_height_m": CAMERA_HEIGHT_M}),
        ("video", {"rescan_every": 5}),
        ("video_nofloor", {"rescan_every": 5, "estimate_floor": False}),
    )
    for mode, offline in (m for m in modes if m[0] in args.modes.split(",")):
        pipe = Pipeline.from_config({"estimator": "offline", "offline": offline})
        for n in (1, 3):
            t0 = time.perf_counter()
            r = run(pipe, frames[n], K, args.repeat)
            row = {"mode": mode, "people_present": n, "people_found": r["people"]}
            row.update({k: v for k, v in r.items() if k not in ("result", "people")})
            row["fps_mean"], row["fps_median"] = (
                round(row["fps_mean"], 2),
                round(row["fps_median"], 2),
            )
            row["accuracy"] = accuracy(r["result"], truths[n])
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            report["runs"].append(row)
            stages = ", ".join(f"{k} {v}" for k, v in row["ms_median"].items())
            print(
                f"{mode:5s} {n} person(s): found {row['people_found']}/{n}, {row['fps_mean']:.1f} "
                f"FPS mean, {row['fps_median']:.1f} median | median ms: {stages}"
            )
            for a in row["accuracy"]:
                print(f"      truth {a}")
        pipe.close()
    if not args.skip_children:
        t0 = time.perf_counter()
        report["children"] = children(CAMERA_HEIGHT_M)
        report["children"]["wall_s"] = round(time.perf_counter() - t0, 1)
        for key, row in report["children"]["summary"].items():
            print(f"children {key:20s} {row}")
        print(f"floor sizing step, median ms: {report['children']['floor_size_ms_median']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
