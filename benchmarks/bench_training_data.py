"""Training-data throughput: dataset build time per image and sample time, on synthetic
AGORA-format data.

Usage (from the repository root):

    OMP_NUM_THREADS=1 tools/env.sh python benchmarks/bench_training_data.py  # 6890-vertex body
    OMP_NUM_THREADS=1 tools/env.sh python benchmarks/bench_training_data.py --vertices 700

Writes ``benchmarks/results/training_data-<V>v.json`` and prints a markdown table.

* build: ``HumanDataset(...)`` over ``--images`` AGORA-format images (world-frame SMPL,
  ``--people`` people each): reading the file and moving every person into the camera frame (needs
  the rest-pose root joint J0(beta) of every person). Reported per image.
* sample: ``dataset[i]`` without augmentation at input size 1288 on 640x480 images: GT meshes, 2D
  joints, boxes and the SAT scale-map target (mesh subdivided once). Reported per sample, minimum
  and median.

The body is a SYNTHETIC SMPL-format model (``make_synthetic_smpl``) with the vertex count of the
real one, so the costs that scale with V are real; the numbers say nothing about accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

# The source tree first: a colcon install of the package may also be on the path (tools/env.sh).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mahmr_ros.body.synthetic import make_synthetic_smpl
from training.data.augment import AugmentConfig
from training.data.dataset import HumanDataset
from training.smpl_layer import SMPLLayer

OUT_DIR = Path(__file__).resolve().parent / "results"


def write_agora(root: Path, num_images: int, people: int, seed: int = 0) -> Path:
    """An AGORA-format ``annots`` npz (world frame, per-person extrinsics) plus 640x480 noise
    images."""
    rng = np.random.default_rng(seed)
    annots = {}
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(num_images):
        key = f"ag_{i:06d}.png"
        smpl = []
        for _ in range(people):
            pose = rng.normal(0, 0.1, 72)
            pose[:3] = [np.pi + rng.normal(0, 0.1), rng.uniform(-1, 1), 0.0]
            transl = [rng.uniform(-1, 1), 0.2, 0.0]
            smpl.append({"betas": rng.normal(0, 0.5, (1, 10)), "global_orient": pose[:3],
                         "body_pose": pose[3:], "transl": transl})  # fmt: skip
        K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
        annots[key] = {"isValid": [True] * people, "cam_intrinsics": K,
                       "cam_rot": np.repeat(np.eye(3)[None], people, 0),
                       "cam_trans": np.tile([0.0, 0.0, 5.0], (people, 1)), "smpl_gt": smpl,
                       "kid": [False] * people}  # fmt: skip
        if i < 16:
            cv2.imwrite(
                str(root / "images" / key), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            )
    path = root / "annots.npz"
    np.savez(path, annots=np.array(annots, dtype=object))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--vertices", type=int, default=6890)
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--tag", default="", help="suffix of the result file (e.g. 'before')")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = make_synthetic_smpl(
            root / "smpl.npz", args.vertices, kid_template_path=root / "kid.npy"
        )
        body = SMPLLayer(model, root / "kid.npy", num_betas=11)
        annots = write_agora(root / "agora", args.images, args.people)
        t0 = time.perf_counter()
        data = HumanDataset(
            "agora", annots, root / "agora" / "images", body, 1288, AugmentConfig.none(), 0
        )
        build_ms = (time.perf_counter() - t0) * 1e3 / args.images
        times = []
        for i in range(min(args.samples, 16)):
            t0 = time.perf_counter()
            data[i]
            times.append((time.perf_counter() - t0) * 1e3)
    result = {
        "vertices": args.vertices,
        "images": args.images,
        "people_per_image": args.people,
        "build_ms_per_image": build_ms,
        "sample_ms_min": min(times),
        "sample_ms_median": statistics.median(times),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
        "torch": torch.__version__,
    }
    OUT_DIR.mkdir(exist_ok=True)
    suffix = f"-{args.tag}" if args.tag else ""
    out = OUT_DIR / f"training_data-{args.vertices}v{suffix}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("| V | build ms/image | sample ms (min / median) | load |\n|---|---|---|---|")
    print(f"| {args.vertices} | {build_ms:.2f} | {min(times):.1f} / "
          f"{statistics.median(times):.1f} | {result['load_avg_1min']:.2f} |")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
