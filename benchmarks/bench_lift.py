"""Is BlazePose worth its cost next to NanoDet + MoveNet? Fit accuracy with and without its 3D
landmarks.

The default person source (``nanodet+movenet``) gives COCO-17 2D keypoints; BlazePose run on each
person's crop can add metric 3D landmarks and foot points (``blazepose_3d``), used only where its
2D landmarks agree with the person's keypoints. This benchmark fits synthetic renders with known
truth both ways and compares:

* root-relative keypoint error (the 23 Anny keypoints, camera frame, pelvis aligned), cm;
* body orientation error (angle between the fitted and the true ``R_cam_anny``), degrees;
* pelvis depth error (% of the true depth) and height error (cm);
* estimator time per frame (``detect_pose`` and total), and how many people BlazePose agreed on.

Scenes: :func:`mahmr_ros.offline.sample.render_sample` with three people (Anny ages 0.3-0.62, 3-5.5
m, yaws -60..75 degrees), four poses (standing, walking, arms out, reaching) and two camera
pitches, camera height given (``camera_height_m``: sizes come from the floor in both variants, so
the comparison is about the pose).

    OMP_NUM_THREADS=1 tools/env.sh python benchmarks/bench_lift.py
        # writes benchmarks/results/lift.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_offline import match_by_pelvis  # noqa: E402

from mahmr_ros.runtime.backend import cpu_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lift.json"
POSES = {
    "standing": None,
    "walking": {"upperleg01.L": (0.4, 0.08, 0.0), "upperleg01.R": (-0.35, -0.08, 0.0),
                "lowerleg01.L": (-0.5, 0.0, 0.0), "upperarm01.L": (-0.4, 0.85, 0.0),
                "upperarm01.R": (0.4, -0.85, 0.0)},
    "arms_out": {"upperarm01.L": (0.0, 0.1, 0.0), "upperarm01.R": (0.0, -0.1, 0.0),
                 "lowerarm01.L": (0.0, 0.0, 0.6), "lowerarm01.R": (0.0, 0.0, -0.6)},
    "reaching": {"upperarm01.L": (0.0, -0.6, 0.0), "upperarm01.R": (-1.2, -0.85, 0.0),
                 "spine02": (0.25, 0.0, 0.0)},
}  # fmt: skip
#: (age, x m, z m, yaw deg) of the three people per scene variant.
PEOPLE = (
    ((0.6, -1.0, 4.0, 20.0), (0.45, 0.4, 3.5, 70.0), (0.62, 1.3, 5.0, -40.0)),
    ((0.3, -0.8, 3.2, -60.0), (0.62, 0.3, 5.5, 0.0), (0.55, 1.2, 4.2, 75.0)),
)
PITCHES_DEG = (0.0, 12.0)
VARIANTS = ("never", "search")


def scenes(body):
    from mahmr_ros.offline.anny_body import STANDING_POSE
    from mahmr_ros.offline.sample import ScenePerson, render_sample

    colours = (
        ((60, 60, 170), (70, 50, 40)),
        ((150, 110, 40), (40, 40, 40)),
        ((60, 150, 60), (120, 80, 50)),
    )
    for pose_name, pose in POSES.items():
        for people in PEOPLE:
            for pitch in PITCHES_DEG:
                scene = [
                    ScenePerson(a, x, z, yaw, *colours[i])
                    for i, (a, x, z, yaw) in enumerate(people)
                ]
                image, info = render_sample(
                    people=scene, body=body,
                    pose=None if pose is None else {**STANDING_POSE, **pose},
                    camera_pitch_deg=pitch,
                )  # fmt: skip
                yield f"{pose_name}/{people[0][0]}/{pitch}", image, info, pitch


def errors(est, truth: list[dict]) -> list[dict]:
    """Per true person: matched by pelvis reprojection (30 px), the errors listed in the module
    docstring."""
    from mahmr_ros.offline.anny_body import ANNY_TO_REP155

    K = est.K_used
    rows = []
    for person in truth:
        p = np.array(person["pelvis_cam"])
        h = match_by_pelvis(est.humans, p, K)
        if h is None:
            rows.append({"found": False})
            continue
        kp_true = np.array(person["keypoints_cam"]) - p
        kp_fit = h.joints[1:] - h.pelvis
        R_fit = h.orientation @ ANNY_TO_REP155.T
        R_true = np.array(person["R_cam_anny"])
        angle = np.degrees(np.arccos(np.clip((np.trace(R_fit.T @ R_true) - 1) / 2, -1, 1)))
        rows.append(
            {
                "found": True,
                "keypoints_rr_cm": 100 * float(np.linalg.norm(kp_fit - kp_true, axis=1).mean()),
                "orientation_deg": float(angle),
                "depth_pct": 100 * abs(float(h.pelvis[2]) - p[2]) / p[2],
                "height_cm": 100 * abs(h.height_m - person["height_m"]),
                "lifted": "blazepose" in h.extras.get("keypoint_source", ""),
            }
        )
    return rows


def main() -> int:
    import torch

    from mahmr_ros.offline.estimator import OfflineEstimator

    torch.set_num_threads(1)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    estimators = {v: OfflineEstimator(blazepose_3d=v) for v in VARIANTS}
    rows = {v: [] for v in VARIANTS}
    times = {v: {"detect_pose": [], "total": []} for v in VARIANTS}
    agreed = {v: [0, 0] for v in VARIANTS}
    body = estimators["never"].body
    for name, image, info, pitch in scenes(body):
        K = np.array(info["K"])
        for v, est in estimators.items():
            est.set_floor(1.2, pitch)
            est.estimate(image, K)  # warm-up: first-call allocations (BlazePose graphs, sessions)
            w0 = time.perf_counter()
            result = est.estimate(image, K)
            times[v]["total"].append(1e3 * (time.perf_counter() - w0))
            times[v]["detect_pose"].append(result.timings_ms["detect_pose"])
            given, ok = getattr(est.source, "last_blazepose", (0, 0))
            agreed[v][0] += given
            agreed[v][1] += ok
            for row in errors(result, info["people"]):
                rows[v].append({"scene": name, **row})
        print(name, {v: rows[v][-3:] for v in VARIANTS}, flush=True)
    summary = {}
    for v in VARIANTS:
        found = [r for r in rows[v] if r["found"]]
        summary[v] = {
            "people": len(rows[v]),
            "found": len(found),
            "blazepose_crops": agreed[v][0],
            "blazepose_agreed": agreed[v][1],
            **{
                f"{k}_mean": round(float(np.mean([r[k] for r in found])), 2)
                for k in ("keypoints_rr_cm", "orientation_deg", "depth_pct", "height_cm")
            },
            **{
                f"{k}_p90": round(float(np.percentile([r[k] for r in found], 90)), 2)
                for k in ("keypoints_rr_cm", "orientation_deg")
            },
            "detect_pose_ms_median": round(float(np.median(times[v]["detect_pose"])), 1),
            "estimate_ms_median": round(float(np.median(times[v]["total"])), 1),
        }
    for est in estimators.values():
        est.close()
    result = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores (shared dev box)",
        "torch_threads": 1,
        "load_average_1_5_15_at_start": [round(x, 2) for x in load_start],
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        "scenes": f"{len(POSES)} poses x {len(PEOPLE)} groups x {len(PITCHES_DEG)} pitches, 3 "
        "people each, 640x480 renders, camera height given",
        "summary": summary,
        "people": rows,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
