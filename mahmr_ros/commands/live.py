"""``python -m mahmr_ros.cli live --video FILE | --webcam N``: metric meshes on a video or webcam,
live.

Every frame goes through the pipeline (offline default estimator unless ``--weights`` and
``--smpl`` select MA-HMR; DTO ``prior_only``; tracking on), gets the meshes rendered over it with
one label per person (``id  height  distance``), and is written to ``--out`` (an ``.mp4``/``.avi``
video) and/or shown in a window (``--show``, needs a desktop OpenCV build and a display). A
one-line summary per second goes to stdout, and ``<out>.json`` gets per-frame people (id, height,
pelvis, score) when the run ends.

The offline estimator runs in video mode here (``--rescan-every 5``): MoveNet follows the last
frame's people and the full person search (NanoDet + MoveNet) runs every 5th frame, or at once when
someone is lost or two people's boxes overlap.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mahmr_ros.commands.infer import parse_intrinsics

HELP = "run the pipeline on a video file or webcam and show/write mesh overlays"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="video file (anything OpenCV/FFmpeg reads)")
    source.add_argument("--webcam", type=int, help="camera index (0 = the first webcam)")
    parser.add_argument("--out", default="out/live.mp4", help="overlay video to write ('' = none)")
    parser.add_argument(
        "--show", action="store_true", help="show the overlay in a window (q / Esc quits)"
    )
    parser.add_argument(
        "--max-frames", type=int, default=0, help="stop after this many frames (0 = all)"
    )
    parser.add_argument(
        "--K",
        default="",
        help="intrinsics 'fx,fy,cx,cy' in pixels; default: an assumed FoV (--hfov)",
    )
    parser.add_argument("--hfov", type=float, default=60.0, help="assumed horizontal FoV, degrees")
    parser.add_argument(
        "--rescan-every", type=int, default=5, help="full person search every N frames"
    )
    parser.add_argument(
        "--dto", default="prior_only", choices=("off", "prior_only"), help="DTO refinement"
    )
    parser.add_argument(
        "--weights", default="", help="MA-HMR checkpoint (with --smpl: use MA-HMR)"
    )
    parser.add_argument("--smpl", default="", help="SMPL model for MA-HMR")


def draw_labels(image: np.ndarray, result) -> np.ndarray:
    """Write ``id  height  distance`` above each person's box (in place; returns the image)."""
    import cv2

    from mahmr_ros.viz import track_color

    for i, h in enumerate(result.humans):
        x0, y0 = int(h.bbox_xyxy[0]), int(h.bbox_xyxy[1])
        text = (
            f"{h.track_id or i}  {h.height_m:.2f} m  {float(np.linalg.norm(h.pelvis)):.1f} m away"
        )
        org = (max(0, x0), max(12, y0 - 6))
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(
            image,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            track_color(h.track_id, i),
            1,
            cv2.LINE_AA,
        )
    return image


def run(args: argparse.Namespace) -> int:
    import cv2

    from mahmr_ros.pipeline import InputError, Pipeline
    from mahmr_ros.viz import render_overlay

    if args.video is not None and not Path(args.video).is_file():
        print(f"[live] video file not found: {args.video}", file=sys.stderr)
        return 2
    cap = cv2.VideoCapture(args.video if args.video is not None else args.webcam)
    if not cap.isOpened():
        source = args.video if args.video is not None else f"webcam {args.webcam}"
        print(
            f"[live] cannot open {source} (not a video OpenCV can read, or no such camera)",
            file=sys.stderr,
        )
        return 2
    try:
        K = parse_intrinsics(args.K)
    except ValueError as err:
        print(f"[live] --K: {err}", file=sys.stderr)
        return 2
    config = {
        "estimator": "auto",
        "model": {"weights": args.weights, "smpl_path": args.smpl},
        "offline": {"rescan_every": args.rescan_every, "hfov_deg": args.hfov},
        "dto": {"mode": args.dto},
    }
    pipe = Pipeline.from_config(config)
    faces = pipe.topology().faces
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = None
    log: list[dict] = []
    frames, t_start, t_report = 0, time.perf_counter(), time.perf_counter()
    try:
        while args.max_frames <= 0 or frames < args.max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            try:
                result = pipe.process(frame, K, stamp=frames / fps_in)
            except InputError as err:
                print(f"[live] frame {frames} skipped: {err}", file=sys.stderr)
                frames += 1
                continue
            overlay = draw_labels(
                render_overlay(frame, result.humans, faces, result.K_used), result
            )
            if args.out and writer is None:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if args.out.endswith(".avi") else "mp4v"))
                writer = cv2.VideoWriter(
                    args.out, fourcc, fps_in, (frame.shape[1], frame.shape[0])
                )
                if not writer.isOpened():
                    print(f"[live] cannot write {args.out} (codec unavailable?)", file=sys.stderr)
                    return 2
            if writer is not None:
                writer.write(overlay)
            if args.show:
                try:
                    cv2.imshow("mahmr_ros live", overlay)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error as err:
                    print(
                        f"[live] --show needs a desktop OpenCV and a display ({err})",
                        file=sys.stderr,
                    )
                    return 2
                if key in (ord("q"), 27):
                    break
            log.append(
                {
                    "frame": frames,
                    "ms": round(result.timings_ms.get("total", 0.0), 1),
                    "people": [
                        {
                            "id": h.track_id,
                            "height_m": round(h.height_m, 3),
                            "pelvis_m": [round(float(v), 3) for v in h.pelvis],
                            "score": round(h.score, 3),
                        }
                        for h in result.humans
                    ],
                }
            )
            frames += 1
            now = time.perf_counter()
            if now - t_report >= 1.0:
                fps = frames / (now - t_start)
                people = (
                    ", ".join(f"{h.track_id} {h.height_m:.2f} m" for h in result.humans)
                    or "nobody"
                )
                print(
                    f"[live] frame {frames}: {fps:.1f} FPS, {len(result.humans)} people ({people})"
                )
                t_report = now
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if args.show:
            cv2.destroyAllWindows()
        pipe.close()
    elapsed = time.perf_counter() - t_start
    print(f"[live] {frames} frames in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.1f} FPS)")
    if args.out:
        summary = Path(args.out).with_suffix(".json")
        summary.write_text(json.dumps({"frames": log, "body_model": pipe.body_model}, indent=1))
        print(f"[live] wrote {args.out} and {summary}")
    return 0
