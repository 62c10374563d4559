"""DTO benchmark on synthetic crowds: per-stage timings and accuracy, DTO-Lite against whole-frame
DTO.

Usage (from the repository root):

    OMP_NUM_THREADS=1 tools/env.sh python benchmarks/bench_dto.py  # timings, 1/5/10/20 people
    OMP_NUM_THREADS=1 tools/env.sh python benchmarks/bench_dto.py \
        --scenes 200  # + accuracy (README figures)

Prints markdown tables and writes ``benchmarks/results/dto.json``.

Timings: the same scene is refined ``--repeats`` times per method; we print the minimum and the
median per stage, because on a shared machine the median includes time the process waited for a
core (the load average is printed). Stages: cues (z-buffer + statistics), solve (grouping + closed
form), apply (scaling, shape). The depth network is excluded (RGB-D here). The baseline in the same
run is whole-frame DTO (reference procedure: mesh z-buffer at <= 512 px, per-pixel statistics), on
CPU, and on CUDA when available.

Accuracy: ``--scenes`` synthetic crowds (2-12 people, 1-15 m, estimates off by 5-30 % along the
ray, seeded), per-person relative depth error of the pelvis (median) and pairwise depth ordering
under the PCDR 0.2 m rule, before and after, for metric depth (RGB-D), relative depth (true
disparity through an unknown affine map a / Z + b with 1 % noise) and the height prior alone;
metric depth also as a simulated RGB-D sensor (``CrowdScene.sensor_depth_mm``: noise, holes, IR
shadows, flying pixels, 10 m range, 16UC1). The relative cue is not in DA-V2-L raw units, so the
reference's unit-specific constants are replaced (alpha_min 0, no d > 0.02 far rule; spec dto §11
item 3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The source tree first: a colcon install of the package may also be on the path (tools/env.sh).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mahmr_ros.dto import DTOConfig, DTOLite, LiteConfig, refine
from mahmr_ros.testing import make_crowd

IMAGE_HW = (480, 640)
RELATIVE = {"alpha_min_default": 0.0, "far_cue_threshold": None}
RESULTS: dict = {}
OUT = Path(__file__).resolve().parent / "results" / "dto.json"


def ordering_counts(z_pred: np.ndarray, z_true: np.ndarray, thr: float = 0.2) -> tuple[int, int]:
    """(correct, total) pairs under the PCDR rule (spec dto §8): equal within thr, else ordered
    beyond thr."""
    ok = n = 0
    for i in range(len(z_true)):
        for j in range(i + 1, len(z_true)):
            dt, dp = z_true[j] - z_true[i], z_pred[j] - z_pred[i]
            ok += bool(abs(dp) < thr) if abs(dt) < thr else bool(dp * np.sign(dt) > thr)
            n += 1
    return ok, n


def _stats(values_ms) -> str:
    v = np.asarray(values_ms)
    return f"{v.min():7.2f} / {np.median(v):7.2f}"


def _row(n, method, device, cues, rest, total) -> None:
    print(f"| {n} | {method} | {device} | {_stats(cues)} | {_stats(rest)} | {_stats(total)} |")
    summary = {
        k: [float(np.min(v)), float(np.median(v))]
        for k, v in (("cues", cues), ("rest", rest), ("total", total))
    }
    RESULTS["timings"]["rows"].append({"people": n, "method": method, "device": device, **summary})


def bench_timings(people=(1, 5, 10, 20), repeats: int = 30, seed: int = 0) -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    size = f"{IMAGE_HW[1]}x{IMAGE_HW[0]}"
    print(f"\n## Per-frame cost, {size}, metric depth, ms as min / median over {repeats} runs")
    load = os.getloadavg()[0]
    print(
        f"load average {load:.2f} on {os.cpu_count()} cores; torch threads "
        f"{torch.get_num_threads()}"
    )
    RESULTS["timings"] = {"image": size, "load_average": load, "repeats": repeats, "rows": []}
    header = "| people | method | device | cues | solve + apply | total |"
    print(header + "\n|---|---|---|---|---|---|")
    for n in people:
        scene = make_crowd(n, seed=seed + n, image_hw=IMAGE_HW)
        for device in devices:
            cues_ms, rest_ms, total_ms = [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = refine(
                    scene.estimates,
                    scene.K,
                    scene.depth_m,
                    "metric",
                    masks=scene.masks,
                    faces=scene.faces,
                    device=device,
                )
                if device == "cuda":
                    torch.cuda.synchronize()
                total_ms.append((time.perf_counter() - t0) * 1e3)
                st = out[0].extras["dto"]["frame"]["timings_ms"]
                cues_ms.append(st["cues"])
                rest_ms.append(st["solve"] + st["apply"])
            _row(n, "DTO (baseline)", device, cues_ms, rest_ms, total_ms)
        lite = DTOLite(LiteConfig(), device="cpu")
        stages: dict[str, list] = {"cues": [], "solve": [], "apply": []}
        total_ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            lite(scene.estimates, scene.K, scene.depth_m, "metric", masks=scene.masks)
            total_ms.append((time.perf_counter() - t0) * 1e3)
            for k, v in lite.last_timings_ms.items():
                stages[k].append(v)
        solve_apply = np.asarray(stages["solve"]) + np.asarray(stages["apply"])
        _row(n, "DTO-Lite", "cpu", stages["cues"], solve_apply, total_ms)


def bench_accuracy(num_scenes: int, seed: int = 1000) -> None:
    methods = {
        "before (network-like estimates)": None,
        "DTO metric": ("refine", "metric", {}),
        "DTO metric, small-area rule 1/4000": ("refine", "metric", {"min_area_fraction": 2.5e-4}),
        "DTO relative": ("refine", "disparity", RELATIVE),
        "DTO relative, small-area rule 1/4000": (
            "refine",
            "disparity",
            {**RELATIVE, "min_area_fraction": 2.5e-4},
        ),
        "DTO prior only": ("refine", None, {}),
        "DTO metric, sensor 16UC1, small-area rule 1/4000": (
            "refine",
            "sensor",
            {"min_area_fraction": 2.5e-4},
        ),
        "DTO-Lite metric (1 frame)": ("lite", "metric", {}),
        "DTO-Lite metric, sensor 16UC1 (1 frame)": ("lite", "sensor", {}),
        "DTO-Lite relative (1 frame)": ("lite", "disparity", {}),
    }
    errors = {k: [] for k in methods}
    errors_refined = {k: [] for k in methods}
    order = {k: [0, 0] for k in methods}
    refined = {k: [0, 0] for k in methods}
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    for k in range(num_scenes):
        scene = make_crowd(int(rng.integers(2, 13)), seed=seed + k, image_hw=IMAGE_HW)
        disp, _ = scene.relative_disparity(seed=seed + k)
        maps = {
            "metric": scene.depth_m,
            "disparity": disp,
            "sensor": scene.sensor_depth_mm(seed=seed + k),
        }
        z_true = scene.true_depths()
        for name, spec in methods.items():
            if spec is None:
                out = scene.estimates
            else:
                kind, depth_kind, cfg = spec
                depth = None if depth_kind is None else maps[depth_kind]
                as_kind = "metric" if depth_kind in (None, "sensor") else depth_kind
                if kind == "refine":
                    out = refine(scene.estimates, scene.K, depth, as_kind, masks=scene.masks,
                                 priors=scene.classes, faces=scene.faces,
                                 config=DTOConfig(**cfg))  # fmt: skip
                else:
                    out = DTOLite()(scene.estimates, scene.K, depth, as_kind, masks=scene.masks,
                                    priors=scene.classes)  # fmt: skip
            status = [o.extras.get("dto", {}).get("status", "refined") for o in out]
            done = np.array([st in ("refined", "prior") for st in status])
            refined[name][0] += int(done.sum())
            refined[name][1] += len(status)
            z = np.array([o.pelvis[2] for o in out])
            err = np.abs(z - z_true) / z_true
            errors[name] += list(err)
            errors_refined[name] += list(err[done])
            ok, n = ordering_counts(z, z_true)
            order[name][0] += ok
            order[name][1] += n
    people = len(errors["before (network-like estimates)"])
    elapsed = time.perf_counter() - t_start
    size = f"{IMAGE_HW[1]}x{IMAGE_HW[0]}"
    print(f"\n## Accuracy on {num_scenes} synthetic crowds ({people} people, {size}, seed {seed})")
    RESULTS["accuracy"] = {
        "scenes": num_scenes,
        "people": people,
        "image": size,
        "seed": seed,
        "rows": [],
    }
    print(
        "| method | median depth error (all / refined) | mean depth error | ordering (PCDR 0.2 m) "
        "| refined |"
    )
    print("|---|---|---|---|---|")
    for name in methods:
        e = np.asarray(errors[name])
        e_ref = np.median(errors_refined[name]) if errors_refined[name] else float("nan")
        frac = f"{refined[name][0] / max(refined[name][1], 1):.1%}" if methods[name] else "-"
        ordered = order[name][0] / order[name][1]
        print(
            f"| {name} | {np.median(e):.2%} / {e_ref:.2%} | {e.mean():.2%} | {ordered:.1%} | "
            f"{frac} |"
        )
        RESULTS["accuracy"]["rows"].append(
            {
                "method": name,
                "median_error": float(np.median(e)),
                "median_error_refined": float(e_ref),
                "mean_error": float(e.mean()),
                "ordering": ordered,
            }
        )
    print(f"({elapsed:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--scenes", type=int, default=0, help="accuracy scenes (0 = timings only)")
    parser.add_argument("--no-timings", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.no_timings:
        bench_timings(tuple(args.people), args.repeats)
    if args.scenes:
        bench_accuracy(args.scenes)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    previous = (
        json.loads(OUT.read_text()) if OUT.exists() else {}
    )  # keep the part that was not rerun
    OUT.write_text(json.dumps({**previous, **RESULTS}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
