"""The crowd floor estimate of the offline estimator: camera height/pitch, children, heights, cost.

    OMP_NUM_THREADS=2 tools/env.sh python benchmarks/bench_floor.py [--scenes 8] [--seeds 6]
        [--threads 1] [--out FILE]

No camera height is given anywhere here: the floor comes from the people
(``mahmr_ros.offline.crowd_floor``).

* ``renders``: the whole offline estimator (NanoDet + MoveNet + Anny fit + floor) on Anny renders
  (``mahmr_ros.offline.sample.render_sample``) of a static camera, for three cameras (1.2 m level;
  1.6 m pitched 10 degrees down; 2.2 m pitched 20 degrees down; each its own people). Each camera
  sees ``--scenes`` renders of 4 people (1-2 children, Anny age 0.15-0.34, 1.00-1.37 m; adults
  0.50-0.75, 1.63-1.83 m) at 3-6 m, one after the other, as people passing by; the floor is pooled
  over them. Reported: the floor after each render, and every person's height and depth error and
  ``is_child`` (a) online, sized on the floor known at their frame, (b) per image (each render on
  its own: 4 people), (c) sized on the final pooled floor.
* ``keypoints``: ``OfflineEstimator.fit_people`` (no detector) on synthetic walking crowds
  (``mahmr_ros.testing.anny_crowd``: 24 people, heights from the DTO class priors, someone seated,
  someone on a step, someone cut off at the knees; 1.5 px keypoint noise, adult-sized 3D
  landmarks), 8 video frames, ``--seeds`` crowds: floor error, children flagged, height errors.
* ``cost``: the floor step per frame (feet of the fitted people + the estimate's solve) for 3
  people, and the solve alone against the number of pooled observations.

Prints a summary and writes ``benchmarks/results/floor_cpu.json`` (machine, load, threads
recorded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (camera height m, pitch deg, scene seed) of the static cameras of the ``renders`` part.
CAMERAS = ((1.2, 0.0, 0), (1.6, 10.0, 1), (2.2, 20.0, 2))
#: Target of issue 11: children flagged at least this often, with heights within this error.
TARGET_FLAGGED, TARGET_HEIGHT_ERR_M = 0.90, 0.08


def _scene_people(rng, n: int = 4):
    """``n`` people for one render: 1-2 children, adults otherwise, spread across the image."""
    from mahmr_ros.offline.sample import ScenePerson

    kids = int(rng.integers(1, 3))
    ages = [rng.uniform(0.15, 0.34) for _ in range(kids)] + [
        rng.uniform(0.5, 0.75) for _ in range(n - kids)
    ]
    rng.shuffle(ages)
    slots = (np.arange(n) + 0.5) / n * 0.76 + 0.12  # image-width fractions, one per person
    f = 0.5 * 640 / math.tan(math.radians(30.0))
    people = []
    for age, slot in zip(ages, slots):
        z = float(rng.uniform(3.0, 6.0))
        x = (slot * 640 - 319.5 + rng.uniform(-15, 15)) * z / f
        people.append(
            ScenePerson(
                float(age), x, z, float(rng.uniform(-30, 30)), (60, 150, 60), (120, 80, 50)
            )
        )
    return people


def _rows(result, truth_people, tag):
    from bench_offline import accuracy  # noqa: E402  (sibling script)

    rows = []
    for truth, row in zip(truth_people, accuracy(result, truth_people)):
        row["is_child_true"] = truth["is_child"]
        row["mode"] = tag
        rows.append(row)
    return rows


def _summary(rows):
    out = {}
    for kind, is_kid in (("children", True), ("adults", False)):
        g = [r for r in rows if r["is_child_true"] == is_kid]
        found = [r for r in g if r["found"]]
        if not found:
            continue
        dh = np.abs([r["height_err_m"] for r in found])
        dz = np.abs([r["depth_err_m"] / r["true_depth_m"] for r in found])
        out[kind] = {
            "people": len(g),
            "found": len(found),
            "is_child_right": sum(r["is_child"] == is_kid for r in found),
            "height_abs_err_m_mean": round(float(dh.mean()), 3),
            "height_abs_err_m_max": round(float(dh.max()), 3),
            "height_within_8cm": int((dh <= TARGET_HEIGHT_ERR_M).sum()),
            "depth_abs_err_pct_mean": round(100 * float(dz.mean()), 1),
            "depth_abs_err_pct_max": round(100 * float(dz.max()), 1),
        }
    return out


def renders(scenes: int) -> dict:
    from mahmr_ros.offline.estimator import OfflineEstimator
    from mahmr_ros.offline.sample import render_sample

    est = OfflineEstimator(floor_window_frames=10_000)  # one static camera, people passing by
    report = {}
    for cam_h, pitch, seed in CAMERAS:
        rng = np.random.default_rng(seed)
        est.set_floor(None)
        frames, rows, floors = [], {"online": [], "per_image": [], "final_floor": []}, []
        for _ in range(scenes):
            image, info = render_sample(
                people=_scene_people(rng),
                body=est.body,
                camera_height_m=cam_h,
                camera_pitch_deg=pitch,
            )
            K = np.array(info["K"])
            frames.append((image, K, info["people"]))
            result = est.estimate(image, K)
            rows["online"] += _rows(result, info["people"], "online")
            fl = result.floor
            floors.append(
                None
                if fl is None
                else {
                    "camera_height_m": round(fl.camera_height_m, 3),
                    "sigma_m": round(fl.camera_height_sigma_m, 3),
                    "pitch_deg": round(math.degrees(fl.pitch_rad), 2),
                    "pitch_sigma_deg": round(math.degrees(fl.pitch_sigma_rad), 2),
                    "people": fl.people,
                    "frames": fl.frames,
                }
            )
        final = est.floor
        # each render on its own (4 people), then everyone sized on the final pooled floor
        single = OfflineEstimator(warmup=False)
        for image, K, truth in frames:
            rows["per_image"] += _rows(single.estimate(image, K), truth, "per_image")
        single.close()
        if final is not None:
            est.set_floor(final.camera_height_m, math.degrees(final.pitch_rad))
            for image, K, truth in frames:
                rows["final_floor"] += _rows(est.estimate(image, K), truth, "final_floor")
        est.set_floor(None)
        key = f"camera_{cam_h}m_pitch_{pitch}deg"
        report[key] = {
            "true": {"camera_height_m": cam_h, "pitch_deg": pitch},
            "floor_after_each_render": floors,
            "final_error": None
            if final is None
            else {
                "camera_height_m": round(final.camera_height_m - cam_h, 3),
                "pitch_deg": round(math.degrees(final.pitch_rad) - pitch, 2),
            },
            "summary": {name: _summary(r) for name, r in rows.items()},
            "people": rows,
        }
    est.close()
    return report


def keypoint_crowds(seeds: int) -> dict:
    from mahmr_ros.offline.crowd_floor import CrowdFloorEstimator
    from mahmr_ros.offline.estimator import OfflineEstimator
    from mahmr_ros.testing.anny_crowd import make_anny_crowd

    est = OfflineEstimator(rescan_every=5, warmup=False)
    runs, people = [], []
    for seed in range(seeds):
        crowd = make_anny_crowd(est.body, 24, 8, seed=seed, sitting=1, step=1, close=1)
        est.crowd_floor = CrowdFloorEstimator(window_frames=30)
        est.set_floor(None)
        est._last_boxes, est._last_fit = np.zeros((0, 4)), None
        last, t0 = None, time.perf_counter()
        for frame in crowd.frames:
            ids = [t.id for t in frame.truth]
            previous = None
            if last is not None and all(i in last for i in ids):
                previous = np.array([last.index(i) for i in ids])
            result = est.fit_people(frame.people, crowd.K, crowd.image_hw, previous)
            last = ids
        fl = result.floor
        runs.append(
            {
                "seed": seed,
                "camera_height_err_m": round(fl.camera_height_m - crowd.camera_height_m, 3),
                "camera_height_sigma_m": round(fl.camera_height_sigma_m, 3),
                "pitch_err_deg": round(math.degrees(fl.pitch_rad) - crowd.pitch_deg, 2),
                "pitch_sigma_deg": round(math.degrees(fl.pitch_sigma_rad), 2),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
        for h, t in zip(result.humans, frame.truth):
            people.append(
                {"pose": t.pose, "is_child_true": t.is_child, "is_child": bool(h.is_child),
                 "height_err_m": round(h.height_m - t.height_m, 3),
                 "sized_by": h.extras["sized_by"]}
            )  # fmt: skip
    est.close()
    kids = [p for p in people if p["is_child_true"] and p["pose"] == "standing"]
    adults = [p for p in people if not p["is_child_true"] and p["pose"] == "standing"]
    dh = np.abs([r["camera_height_err_m"] for r in runs])
    dp = np.abs([r["pitch_err_deg"] for r in runs])
    kid_dh = np.abs([p["height_err_m"] for p in kids])
    return {
        "runs": runs,
        "camera_height_abs_err_m": {
            "rms": round(float(np.sqrt((dh**2).mean())), 3),
            "max": float(dh.max()),
        },
        "pitch_abs_err_deg": {
            "rms": round(float(np.sqrt((dp**2).mean())), 2),
            "max": float(dp.max()),
        },
        "children": {
            "people": len(kids),
            "flagged": sum(p["is_child"] for p in kids),
            "height_abs_err_m_mean": round(float(kid_dh.mean()), 3),
            "height_abs_err_m_max": round(float(kid_dh.max()), 3),
            "height_within_8cm": int((kid_dh <= TARGET_HEIGHT_ERR_M).sum()),
        },
        "adults": {
            "people": len(adults),
            "called_children": sum(p["is_child"] for p in adults),
            "height_abs_err_m_mean": round(
                float(np.mean(np.abs([p["height_err_m"] for p in adults]))), 3
            ),
        },
    }


def cost(repeat: int = 50) -> dict:
    """ms of the floor step per frame for 3 people, and of the solve against pooled
    observations."""
    from mahmr_ros.offline.anny_body import AnnyBody
    from mahmr_ros.offline.crowd_floor import CrowdFloorEstimator
    from mahmr_ros.offline.floor import FloorSizer, fitted_feet
    from mahmr_ros.offline.keypoints import fit_targets
    from mahmr_ros.testing.anny_crowd import make_anny_crowd

    body = AnnyBody()
    crowd = make_anny_crowd(body, 3, 60, seed=1, depth_range_m=(3.0, 6.0), speed_m=0.03)
    H, W = crowd.image_hw
    floor = CrowdFloorEstimator()
    sizer = FloorSizer(body, 1.35, 12.0)
    feet_ms, solve_ms, size_full_ms, size_near_ms = [], [], [], []
    near = None
    for frame in crowd.frames:
        _, uv, conf, _ = fit_targets(frame.people, (W, H))
        P = len(frame.people)
        R = np.stack([t.R_cam_anny for t in frame.truth])
        aa = np.stack([t.bone_aa for t in frame.truth])
        prior = np.full(P, 0.6), np.full(P, 0.5)
        t0 = time.perf_counter()
        feet, lift, height, seen = fitted_feet(body, R, aa, *prior, uv, conf, crowd.K)
        floor.add_frame(np.arange(P)[seen], feet[seen], lift[seen], height[seen], crowd.K[1, 1])
        t1 = time.perf_counter()
        floor.solve()
        t2 = time.perf_counter()
        sizer.size(R, aa, uv, conf, crowd.K, image_wh=(W, H))
        t3 = time.perf_counter()
        sizer.size(R, aa, uv, conf, crowd.K, image_wh=(W, H), near=near)
        t4 = time.perf_counter()
        near = sizer.last_path_pos
        feet_ms.append((t1 - t0) * 1e3)
        solve_ms.append((t2 - t1) * 1e3)
        size_full_ms.append((t3 - t2) * 1e3)
        size_near_ms.append((t4 - t3) * 1e3)
    out = {
        "people": 3,
        "feet_ms_median": round(statistics.median(feet_ms[5:]), 2),
        "solve_ms_median": round(statistics.median(solve_ms[5:]), 2),
        "floor_sizer_full_path_ms_median": round(statistics.median(size_full_ms[5:]), 2),
        "floor_sizer_near_last_ms_median": round(statistics.median(size_near_ms[5:]), 2),
    }
    # the solve alone, warm-started, against the pooled observations (a static camera's window
    # filling up)
    big = make_anny_crowd(body, 24, 40, seed=2)
    floor = CrowdFloorEstimator()
    solve_vs_n = {}
    for i, frame in enumerate(big.frames):
        _, uv, conf, _ = fit_targets(frame.people, (W, H))
        P = len(frame.people)
        R = np.stack([t.R_cam_anny for t in frame.truth])
        aa = np.stack([t.bone_aa for t in frame.truth])
        feet, lift, height, seen = fitted_feet(
            body, R, aa, np.full(P, 0.6), np.full(P, 0.5), uv, conf, big.K
        )
        ids = np.array([t.id for t in frame.truth])
        floor.add_frame(ids[seen], feet[seen], lift[seen], height[seen], big.K[1, 1])
        floor.solve()
        if i + 1 in (5, 20, 40):
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                floor.solve()
                times.append((time.perf_counter() - t0) * 1e3)
            n = sum(len(f.ids) for f in floor._frames)
            solve_vs_n[f"{n}_observations"] = round(statistics.median(times), 2)
    out["solve_ms_median_by_pooled_observations"] = solve_vs_n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="renders per static camera")
    parser.add_argument("--seeds", type=int, default=6, help="synthetic keypoint crowds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", default="renders,keypoints,cost")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "floor_cpu.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from mahmr_ros.runtime.backend import cpu_name

    report = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": args.threads,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }
    parts = args.parts.split(",")
    if "cost" in parts:
        report["cost"] = cost()
        print("cost", report["cost"])
    if "keypoints" in parts:
        t0 = time.perf_counter()
        report["keypoints"] = keypoint_crowds(args.seeds)
        report["keypoints"]["wall_s"] = round(time.perf_counter() - t0, 1)
        print("keypoints", {k: v for k, v in report["keypoints"].items() if k != "runs"})
    if "renders" in parts:
        t0 = time.perf_counter()
        report["renders"] = renders(args.scenes)
        report["renders_wall_s"] = round(time.perf_counter() - t0, 1)
        for key, cam in report["renders"].items():
            print(key, "final floor error", cam["final_error"])
            for name, summary in cam["summary"].items():
                print(f"   {name:12s}", summary)
    report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
