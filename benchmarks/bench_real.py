"""The default pipeline on real footage: detection, identity, floor consistency and speed (issue 11
targets).

Data (fetched by ``benchmarks/real_data.py`` into ``build/bench_data``, never committed; our labels
are):

* stills: 10 frames of OpenCV's ``vtest.avi`` (every 80th, 768x576) + scikit-image's astronaut
  (512x512), boxes in ``benchmarks/data/people_boxes.json``; each frame is an unrelated image
  (``rescan_every=1``);
* video: ``vtest.avi`` frames 690-749 (60 consecutive frames, 10 fps, 7-8 people crossing each
  other and a sign post), boxes WITH identities in ``benchmarks/data/vtest_tracks.json``, run in
  video mode (``offline.rescan_every``, stamps at 10 fps), after the 200 frames before it (not
  scored: a static camera that has watched the scene; ``--warmup 0`` starts cold at frame 690);
* speed: the same video resized to 640x480, a 3-person stretch (frames 430-459) and an 8-person one
  (720-749).

Everything runs through ``Pipeline.from_config`` (offline estimator, DTO ``prior_only``, tracking),
``K=None`` (the assumed 60 degree FoV: vtest has no calibration).

Metrics:

* recall / precision at IoU 0.5 of the 2D box of each person's projected mesh
  (``HumanEstimate.bbox_xyxy``) against the labels (people >= 40 px tall, at least half visible;
  detections on "ignore" boxes or inside "ignore_regions" count neither way), greedy matching in
  score order;
* track ids per true person: distinct ``track_id`` values matched to each labelled identity over
  the clip (1.0 = no fragmentation or swap), and the id switches (a person's matched id differs
  from their last one);
* feet: each matched person's sole (mesh vertex lowest along the floor's up) in every video frame
  where the labelled box ends above the image bottom; RMS signed distance to (a) the pipeline's
  final floor estimate (``FrameResult.floor``, one plane for the static camera) and (b) the
  least-squares plane through all soles (consistency alone, whatever the floor estimate);
* FPS = 1 / mean ``Pipeline.process`` wall time per frame (everything included), with the load
  average.

    tools/env.sh python benchmarks/bench_real.py  # writes benchmarks/results/real.json
    tools/env.sh python benchmarks/bench_real.py --only video --set offline.rescan_every=3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_people2d import iou_matrix  # noqa: E402
from real_data import load_labelled_images, read_vtest_frames  # noqa: E402

from mahmr_ros.runtime.backend import cpu_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "real.json"
TRACKS = Path(__file__).resolve().parent / "data" / "vtest_tracks.json"
IOU = 0.5
VIDEO_FPS = 10.0
#: The default pipeline in video mode (what ``python -m mahmr_ros.cli live`` runs).
VIDEO_CONFIG = {"offline": {"rescan_every": 5}}
SPEED_CLIPS = {"3_people": (430, 460), "8_people": (720, 750)}
#: Video frames run before the scored clip (690-749): the camera has watched the scene for 20 s, so
#: the floor estimate pools the people of frames 490-689 too (from a cold start it wanders while
#: few people are in).
WARMUP_FRAMES = 200


def match(boxes, scores, truth, ignore, ignore_regions=()) -> tuple[np.ndarray, int, int]:
    """Greedy IoU matching in score order.

    Returns:
        (T,) index of the detection matched to each true box (-1 = missed), false positives,
        ignored detections.
    """
    order = np.argsort(-np.asarray(scores)) if len(scores) else np.zeros(0, int)
    ious = iou_matrix(boxes, truth)
    ignore_iou = iou_matrix(boxes, ignore)
    matched = np.full(len(truth), -1)
    false_pos = ignored = 0
    for d in order:
        free = [(ious[d, t], t) for t in range(len(truth)) if matched[t] < 0 and ious[d, t] >= IOU]
        if free:
            matched[max(free)[1]] = d
            continue
        cx, cy = (boxes[d, 0] + boxes[d, 2]) / 2, (boxes[d, 1] + boxes[d, 3]) / 2
        in_region = any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in ignore_regions)
        if (len(ignore) and ignore_iou[d].max() >= IOU) or in_region:
            ignored += 1
        else:
            false_pos += 1
    return matched, false_pos, ignored


def on_border(boxes: np.ndarray, image_hw: tuple[int, int], margin_px: float = 3.0) -> np.ndarray:
    """(N,) bool: the labelled (N, 4) boxes reach the image border (the person is cut by it)."""
    H, W = image_hw
    b = np.asarray(boxes, float).reshape(-1, 4)
    return (
        (b[:, 0] <= margin_px)
        | (b[:, 1] <= margin_px)
        | (b[:, 2] >= W - 1 - margin_px)
        | (b[:, 3] >= H - 1 - margin_px)
    )


def sole_point(human, up_cam: np.ndarray) -> np.ndarray:
    """(3,) the mesh vertex lowest along ``up_cam`` (camera frame, metres)."""
    return human.vertices[np.argmin(human.vertices @ up_cam)]


def plane_rms(points: np.ndarray) -> float:
    """RMS distance of (N, 3) points to their least-squares plane (total least squares), metres."""
    centred = points - points.mean(0)
    return float(np.sqrt(np.linalg.svd(centred, compute_uv=False)[-1] ** 2 / len(points)))


def detection_scores(
    hits: int, false_pos: int, total: int, border_hits: int, border_total: int
) -> dict:
    """Recall / precision of the found people and recall of the people cut by the image border."""
    return {
        "hits": hits,
        "false_positives": false_pos,
        "recall": round(hits / total, 3),
        "precision": round(hits / max(hits + false_pos, 1), 3),
        "truncated_boxes": border_total,
        "truncated_recall": round(border_hits / max(border_total, 1), 3),
    }


def make_pipeline(config: dict):
    from mahmr_ros.pipeline import Pipeline

    return Pipeline.from_config(copy.deepcopy(config))


def stills(config: dict) -> dict:
    """Every labelled still as an unrelated image: recall, precision, seconds per image."""
    pipe = make_pipeline(config)
    images = load_labelled_images()
    pipe.process(images[0][1])  # warm-up (first-call allocations)
    hits = false_pos = total = 0
    border_hits = border_total = 0  # people cut by the image border (truncated)
    rows, walls = [], []
    for name, image, truth, ignore in images:
        pipe.tracker.reset() if pipe.tracker is not None else None
        t0 = time.perf_counter()
        result = pipe.process(image)
        walls.append(time.perf_counter() - t0)
        boxes = np.array([h.bbox_xyxy for h in result.humans], float).reshape(-1, 4)
        matched, fp, _ = match(boxes, [h.score for h in result.humans], truth, ignore)
        h = int((matched >= 0).sum())
        hits, false_pos, total = hits + h, false_pos + fp, total + len(truth)
        cut = on_border(truth, image.shape[:2])
        border_hits, border_total = (
            border_hits + int((matched[cut] >= 0).sum()),
            border_total + int(cut.sum()),
        )
        rows.append(
            {"image": name, "size": f"{image.shape[1]}x{image.shape[0]}", "people": len(truth),
             "hits": h, "false_positives": fp, "found": len(result.humans),
             "s": round(walls[-1], 3)}
        )  # fmt: skip
        print(f"  {name:12s} {h}/{len(truth)} found, {fp} FP, {walls[-1]:.2f} s", flush=True)
    pipe.close()
    return {
        "people": total,
        **detection_scores(hits, false_pos, total, border_hits, border_total),
        "s_per_image_mean": round(float(np.mean(walls)), 3),
        "s_per_image_max": round(float(np.max(walls)), 3),
        "per_image": rows,
    }


def video(config: dict, frames: dict[int, np.ndarray], warmup: int = 0) -> dict:
    """The labelled clip in video mode: recall, precision, ids per person, feet vs floor, FPS.

    ``warmup`` frames before the clip run first (not scored): a static camera that has been
    watching the scene, so the floor estimate has pooled people before the scored frames.
    """
    labels = json.loads(TRACKS.read_text())
    first, last = labels["first_frame"], labels["last_frame"]
    people = {
        pid: {int(f): np.array(b, float) for f, b in boxes.items()}
        for pid, boxes in labels["people"].items()
    }
    ignore = {int(f): np.array(b, float).reshape(-1, 4) for f, b in labels["ignore"].items()}
    regions = labels.get("ignore_regions", [])
    pipe = make_pipeline(config)
    for f in range(first - warmup, first):
        pipe.process(frames[f], stamp=(f - first) / VIDEO_FPS)
    hits = false_pos = total = 0
    border_hits = border_total = 0  # people cut by the image border (truncated)
    ids: dict[str, list[str]] = {pid: [] for pid in people}
    soles, walls, floor = [], [], None
    H = frames[first].shape[0]
    for f in range(first, last + 1):
        t0 = time.perf_counter()
        result = pipe.process(frames[f], stamp=(f - first) / VIDEO_FPS)
        walls.append(time.perf_counter() - t0)
        floor = result.floor or floor
        pids = [pid for pid in people if f in people[pid]]
        truth = np.array([people[pid][f] for pid in pids]).reshape(-1, 4)
        boxes = np.array([h.bbox_xyxy for h in result.humans], float).reshape(-1, 4)
        matched, fp, _ = match(
            boxes,
            [h.score for h in result.humans],
            truth,
            ignore.get(f, np.zeros((0, 4))),
            regions,
        )
        hits, false_pos, total = (
            hits + int((matched >= 0).sum()),
            false_pos + fp,
            total + len(truth),
        )
        cut = on_border(truth, frames[f].shape[:2])
        border_hits, border_total = (
            border_hits + int((matched[cut] >= 0).sum()),
            border_total + int(cut.sum()),
        )
        for pid, d in zip(pids, matched):
            if d < 0:
                continue
            human = result.humans[d]
            ids[pid].append(human.track_id)
            if people[pid][f][3] < H - 3:  # feet inside the image
                soles.append((f, pid, human))
    pipe.close()
    per_person = {pid: len(set(v)) for pid, v in ids.items() if v}
    switches = sum(sum(a != b for a, b in zip(v, v[1:])) for v in ids.values())
    out = {
        "frames": last - first + 1,
        "warmup_frames": warmup,
        "people_boxes": total,
        **detection_scores(hits, false_pos, total, border_hits, border_total),
        "true_people": len(people),
        "track_ids_per_true_person": round(float(np.mean(list(per_person.values()))), 2),
        "track_ids_by_person": per_person,
        "id_switches": int(switches),
        "fps_mean": round(len(walls) / float(np.sum(walls)), 2),
        "ms_per_frame_median": round(1e3 * float(np.median(walls)), 1),
    }
    if floor is not None and soles:
        up = floor.up_cam
        points = np.array([sole_point(h, up) for _, _, h in soles])
        # signed height of each sole above the final floor plane: the camera is camera_height_m
        # above it
        above = points @ up + floor.camera_height_m
        out.update(
            feet_points=len(points),
            floor_camera_height_m=round(floor.camera_height_m, 3),
            floor_pitch_deg=round(float(np.degrees(floor.pitch_rad)), 2),
            floor_source=floor.source,
            feet_rms_to_final_floor_m=round(float(np.sqrt(np.mean(above**2))), 3),
            feet_mean_above_final_floor_m=round(float(np.mean(above)), 3),
            feet_rms_to_best_plane_m=round(plane_rms(points), 3),
        )
    return out


def speed(config: dict, frames: dict[int, np.ndarray]) -> dict:
    """FPS at 640x480 in video mode on a 3-person and an 8-person stretch of the video."""
    import cv2

    out = {}
    for name, (a, b) in SPEED_CLIPS.items():
        pipe = make_pipeline(config)
        small = {
            f: cv2.resize(frames[f], (640, 480), interpolation=cv2.INTER_AREA) for f in range(a, b)
        }
        walls, counts, stages = [], [], {}
        for i, f in enumerate(range(a, b)):
            t0 = time.perf_counter()
            result = pipe.process(small[f], stamp=i / VIDEO_FPS)
            walls.append(time.perf_counter() - t0)
            counts.append(len(result.humans))
            for k, v in result.timings_ms.items():
                stages.setdefault(k, []).append(v)
        pipe.close()
        walls = walls[1:]  # the first frame pays one-off allocations
        out[name] = {
            "frames": f"{a}-{b - 1} resized to 640x480",
            "people_mean": round(float(np.mean(counts)), 2),
            "fps_mean": round(len(walls) / float(np.sum(walls)), 2),
            "ms_per_frame_median": round(1e3 * float(np.median(walls)), 1),
            "ms_per_frame_max": round(1e3 * float(np.max(walls)), 1),
            "stage_ms_mean": {k: round(float(np.mean(v)), 1) for k, v in stages.items()},
        }
        print(
            f"  speed {name}: {out[name]['fps_mean']} FPS ({out[name]['people_mean']} people)",
            flush=True,
        )
    return out


def parse_set(items: list[str]) -> dict:
    """``a.b=1`` -> {"a": {"b": 1}} (values parsed as JSON where they can be)."""
    config: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config


def merged(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default="stills,video,speed", help="comma-separated parts to run"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], help="config overrides for every part, e.g. offline.x=1"
    )
    parser.add_argument("--out", default=str(RESULTS), help="results JSON ('' = do not write)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=WARMUP_FRAMES,
        help="video frames run before the scored clip (not scored)",
    )
    args = parser.parse_args()
    import torch

    override = parse_set(args.set)
    parts = set(args.only.split(","))
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    result: dict = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores (shared dev box)",
        "torch_threads_fit": 1,
        "onnxruntime_threads_per_session": 1,
        "torch_version": torch.__version__,
        "load_average_1_5_15_at_start": [round(x, 2) for x in load_start],
        "config_override": override,
        "data": {
            "stills": "vtest.avi frames 0, 80, ..., 720 (768x576) + scikit-image astronaut "
            "(512x512); labels benchmarks/data/people_boxes.json",
            "video": (
                "vtest.avi frames 690-749 (768x576, 10 fps); labels "
                "benchmarks/data/vtest_tracks.json"
            ),
            "sources": "vtest.avi: OpenCV samples/data (Apache-2.0), opencv-python 4.10.0.84 "
            "sdist on PyPI; astronaut.png: scikit-image 0.26.0 wheel (public domain, NASA)",
        },
    }
    frames = None
    if parts & {"video", "speed"}:
        wanted = set(range(690 - args.warmup, 750)) | {
            f for a, b in SPEED_CLIPS.values() for f in range(a, b)
        }
        frames = read_vtest_frames(sorted(wanted))
    if "stills" in parts:
        print("stills (image mode):", flush=True)
        result["stills"] = stills(override)
        print({k: v for k, v in result["stills"].items() if k != "per_image"}, flush=True)
    if "video" in parts:
        config = merged(VIDEO_CONFIG, override)
        result["video_config"] = config
        result["video"] = video(config, frames, args.warmup)
        print("video:", result["video"], flush=True)
    if "speed" in parts:
        config = merged(VIDEO_CONFIG, override)
        print("speed (video mode, 640x480):", flush=True)
        result["speed_640x480"] = speed(config, frames)
    result["load_average_1_5_15_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
