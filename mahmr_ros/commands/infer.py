"""``python -m mahmr_ros.cli infer --weights W --smpl S IMAGES...``: metric human meshes for image
files.

For every image ``<stem>`` it writes into ``--out``:

* ``<stem>.npz``: ``K`` (3, 3) used, ``K_estimated``, per person ``scores`` (P,), ``bbox_xyxy``
  (P, 4) px, ``rotmats`` (P, 24, 3, 3), ``pose`` (P, 72) axis-angle, ``betas`` (P, 11), ``transl``
  (P, 3) m, ``pelvis`` (P, 3) m, ``vertices`` (P, V, 3) m, ``joints`` (P, J, 3) m, ``keypoints_2d``
  (P, J, 2) px, ``height_m`` (P,), ``is_child`` (P,), and the mesh ``faces`` (F, 3). Camera frame:
  OpenCV optical.
* ``<stem>.json``: the same per-person parameters without the meshes, plus K and timings
  (human-readable).
* ``<stem>_overlay.png``: the meshes rendered over the image with the K used.

``--default`` runs the offline default estimator (no licensed files) instead of MA-HMR. Images are
independent (no tracking); DTO is off unless ``--dto prior_only``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mahmr_ros.geometry import project, rotmat_to_axis_angle

HELP = "run a pipeline on images; write per-image results (npz/json) and overlay PNGs"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--weights", default="", help="MA-HMR checkpoint (mahmr_stage3.bin)")
    parser.add_argument(
        "--smpl", default="", help="SMPL neutral model (SMPL_NEUTRAL.pkl or converted .npz)"
    )
    parser.add_argument(
        "--kid-template", default="", help="AGORA smpl_kid_template.npy (kid blend)"
    )
    parser.add_argument(
        "--config",
        default="fov_kid",
        help="model config: fov_kid (default), fov, default, auto (from the checkpoint) or a JSON "
        "object of build_model overrides",
    )
    parser.add_argument(
        "--conf", type=float, default=0.3, help="detection threshold (default 0.3)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument(
        "--backend",
        default="torch",
        help="torch (default), eager, onnxruntime, tensorrt or auto (graph backends export at "
        "start-up)",
    )
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--intrinsics",
        default="",
        metavar="FX,FY,CX,CY",
        help="camera intrinsics of the images in pixels; default: the network's FoV camera",
    )
    parser.add_argument(
        "--dto", default="off", choices=("off", "prior_only"), help="DTO refinement"
    )
    parser.add_argument("--default", action="store_true", help="use the offline default estimator")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    parser.add_argument("--out", default="out/infer", help="output folder (default out/infer)")


def _images(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)
    return found


def parse_intrinsics(text: str) -> np.ndarray | None:
    """'FX,FY,CX,CY' (pixels) -> a (3, 3) K; empty -> None. Raises ValueError naming the expected
    form."""
    if not text:
        return None
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(
            f"intrinsics must be FX,FY,CX,CY (four numbers, pixels), got '{text}'"
        ) from None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _config(args: argparse.Namespace) -> dict:
    config = {"dto": {"mode": args.dto}, "tracking": {"enabled": False}}
    if args.default:
        return {**config, "estimator": "offline"}
    model_config = args.config
    if model_config.lstrip().startswith("{"):
        try:
            model_config = json.loads(model_config)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config is not valid JSON ({err})") from None
    model = {
        "config": model_config,
        "weights": args.weights,
        "smpl_path": args.smpl,
        "kid_template_path": args.kid_template,
        "conf_thresh": args.conf,
        "device": args.device,
        "backend": args.backend,
        "precision": args.precision,
    }
    return {**config, "estimator": "mahmr", "model": model}


def _build_pipeline(config: dict):
    from mahmr_ros.pipeline import Pipeline

    try:
        return Pipeline.from_config(config)
    except ModuleNotFoundError as err:
        if config["estimator"] == "offline" and err.name and err.name.startswith("mahmr_ros"):
            raise RuntimeError(
                f"the offline default estimator is not available in this install ({err}); run "
                "MA-HMR with --weights and --smpl instead"
            ) from err
        raise


def _pose(human) -> np.ndarray:
    if human.pose is not None:
        return np.asarray(human.pose, np.float32).reshape(-1)
    return rotmat_to_axis_angle(np.asarray(human.rotmats)).astype(np.float32).reshape(-1)


def result_arrays(result, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Stack a ``FrameResult``'s people into the arrays of ``<stem>.npz`` (see the module
    docstring).

    With no people every per-person array has length 0 (SMPL trailing shapes).
    """
    humans = result.humans
    V = int(np.max(faces)) + 1 if np.size(faces) else 0
    empty_tails = {
        "bbox_xyxy": (4,), "rotmats": (24, 3, 3), "pose": (72,), "betas": (11,), "transl": (3,),
        "pelvis": (3,), "vertices": (V, 3), "joints": (45, 3), "keypoints_2d": (45, 2),
    }  # fmt: skip
    arrays = {
        "K": np.asarray(result.K_used, np.float64),
        "K_estimated": np.array(result.K_estimated),
        "scores": np.array([h.score for h in humans], np.float32),
        "height_m": np.array([h.height_m for h in humans], np.float32),
        "is_child": np.array([h.is_child for h in humans], bool),
        "faces": np.asarray(faces, np.int64),
    }
    for name, tail in empty_tails.items():
        if not humans:
            arrays[name] = np.zeros((0, *tail), np.float32)
        elif name == "pose":
            arrays[name] = np.stack([_pose(h) for h in humans])
        elif name == "keypoints_2d" and any(h.keypoints_2d is None for h in humans):
            arrays[name] = np.stack([project(h.joints, result.K_used) for h in humans]).astype(
                np.float32
            )
        else:
            arrays[name] = np.stack([np.asarray(getattr(h, name), np.float32) for h in humans])
    return arrays


def result_json(result, image_path: Path) -> dict:
    """Human-readable summary of a ``FrameResult`` (parameters, no meshes)."""
    people = []
    for h in result.humans:
        people.append(
            {
                "score": round(h.score, 4),
                "bbox_xyxy": np.round(h.bbox_xyxy, 2).tolist(),
                "transl_m": np.round(h.transl, 4).tolist(),
                "pelvis_m": np.round(h.pelvis, 4).tolist(),
                "height_m": round(h.height_m, 4),
                "is_child": h.is_child,
                "betas": np.round(h.betas, 5).tolist(),
                "pose_axis_angle": np.round(_pose(h), 5).tolist(),
            }
        )
    return {
        "image": str(image_path),
        "body_model": result.body_model,
        "K": np.asarray(result.K_used).tolist(),
        "K_estimated": bool(result.K_estimated),
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        "people": people,
    }


def run(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from mahmr_ros.viz import render_overlay

    if not args.default and (not args.weights or not args.smpl):
        print(
            "infer: --weights and --smpl are required for MA-HMR (README 'Official weights'); or "
            "pass --default for the offline estimator",
            file=sys.stderr,
        )
        return 2
    try:
        K = parse_intrinsics(args.intrinsics)
        pipe = _build_pipeline(_config(args))
    except (ValueError, RuntimeError, OSError) as err:
        print(f"infer: {err}", file=sys.stderr)
        return 2
    images = _images(args.images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = pipe.topology().faces
    failures = 0
    for path in tqdm(images, desc="infer", unit="img", disable=len(images) < 2):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(
                f"infer: cannot read image {path} (missing or not an image); skipped",
                file=sys.stderr,
            )
            failures += 1
            continue
        try:
            result = pipe.process(image, K=K)
        except ValueError as err:  # InputError and bad K: skip the frame, keep going
            print(f"infer: {path}: {err}; skipped", file=sys.stderr)
            failures += 1
            continue
        np.savez_compressed(out / f"{path.stem}.npz", **result_arrays(result, faces))
        (out / f"{path.stem}.json").write_text(json.dumps(result_json(result, path), indent=1))
        if not args.no_overlay:
            cv2.imwrite(
                str(out / f"{path.stem}_overlay.png"),
                render_overlay(image, result.humans, faces, result.K_used),
            )
        print(
            f"{path.name}: {len(result.humans)} people, {result.timings_ms.get('total', 0.0):.0f} "
            "ms"
        )
    pipe.close()
    print(f"infer: wrote {len(images) - failures} result(s) to {out}")
    return 1 if failures else 0
