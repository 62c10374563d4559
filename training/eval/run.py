"""``python -m training.eval``: run a checkpoint over a benchmark and write ``report.md`` +
``report.json``.

    python -m training.eval --benchmark 3dpw --annots data/3dpw/annots_smpl_test_genders.npz \
        --images data/3dpw --checkpoint mahmr_stage3.bin --smpl SMPL_NEUTRAL.npz \
        --kid-template smpl_kid_template.npy --h36m-regressor J_regressor_h36m_correct.npy \
        --out reports/3dpw

Benchmarks (spec mahmr_model §6): ``rh`` (RelativeHuman, needs ``--extra-regressor``), ``3dpw`` /
``hi4d`` (needs ``--h36m-regressor``), ``agora`` / ``bedlam`` (optional ``--body-verts``),
``mupots`` and ``panoptic`` (need ``--h36m-regressor``). GT meshes of people with a gender (3DPW,
Hi4D) come from the gendered SMPL models (``--smpl-male`` / ``--smpl-female``, as the official
evaluation); ``--allow-neutral-gt`` uses the neutral model instead (not the official protocol; the
report says so). RelativeHuman's 19-joint people (BK / OCHuman subsets, most children and babies)
are mapped to CrowdPose-14 by the reader and evaluated. Predictions keep queries with confidence >
``--conf`` (0.3); for Panoptic the threshold is halved until at least one person is kept, as
officially. 2D predictions are the network's projections / r (official).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mahmr_ros.geometry import project
from mahmr_ros.model import build_model, detect_config, load_checkpoint, preprocess
from mahmr_ros.model.checkpoint import read_state_dict
from training.data.body import GenderedBody
from training.data.dataset import read_image, smpl_numpy
from training.data.formats import ImageAnnotation, read, world_to_camera
from training.eval.benchmarks import AgoraEval, MuPoTSEval, PanopticEval, ThreeDPWEval
from training.eval.relative_human import RelativeHumanEval
from training.smpl_layer import CROWDPOSE14_FROM_SMPL_EXTRA, SMPLLayer

BENCHMARK_FORMAT = {"rh": "rh", "3dpw": "3dpw", "hi4d": "hi4d", "agora": "agora",
                    "bedlam": "bedlam", "mupots": "mupots", "panoptic": "panoptic"}  # fmt: skip


@dataclass
class Prediction:
    """People found in one image (P of them), camera frame of the ORIGINAL image.

    Attributes:
        scores: (P,).  verts: (P, V, 3) m.  joints: (P, 45, 3) m.  K: (3, 3) px, original image,
        the camera the 2D projections use (continuous pixel coordinates / r, as the official
        evaluations).
        transl: (P, 3) m SMPL-origin translation (its z orders people in the RelativeHuman metric).
        betas: (P, S) shape coefficients, or None (then no height error is reported).
    """

    scores: np.ndarray
    verts: np.ndarray
    joints: np.ndarray
    K: np.ndarray
    transl: np.ndarray
    betas: np.ndarray | None = None


def _project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 2) float64 pixels of camera-frame points (depth clamped at 1 micrometre)."""
    return project(np.asarray(points_cam, np.float64), K, min_depth_m=1e-6)


class NetworkPredictor:
    """Checkpoint + SMPL -> ``Prediction`` per image.

    Args:
        model: ``MetricAwareHMR`` with weights.  body: ``SMPLLayer``.  conf: confidence threshold.
        halve_until_found: halve the threshold until a person is kept (Panoptic protocol).
    """

    def __init__(
        self, model, body, conf: float = 0.3, device: str = "cpu", halve_until_found: bool = False
    ):
        self.model = model.to(device).eval()
        self.body = body.to(device)
        self.conf = conf
        self.device = device
        self.halve = halve_until_found

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray, ann: ImageAnnotation) -> Prediction:
        tensor, meta = preprocess(image_bgr, self.model.cfg.input_size)
        raw = self.model(
            tensor[None].to(self.device), torch.tensor([meta.resized_hw], device=self.device)
        )
        confs = raw["pred_confs"][0]
        thresh = self.conf
        keep = confs > thresh
        while self.halve and not bool(keep.any()) and thresh > 1e-4:
            thresh /= 2
            keep = confs > thresh
        rot = raw["pred_rotmats"][0][keep]
        verts, joints = self.body(rot, raw["pred_betas"][0][keep][:, : self.body.num_betas])
        t = raw["pred_transl"][0][keep][:, None]
        K = raw["pred_intrinsics"][0].double().cpu().numpy().copy()
        K[:2] /= meta.scale
        return Prediction(
            confs[keep].cpu().numpy(),
            (verts + t).cpu().numpy(),
            (joints + t).cpu().numpy(),
            K,
            t[:, 0].cpu().numpy(),
        )


def gt_meshes(body, ann: ImageAnnotation) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame GT vertices (G, V, 3) and joints (G, 45, 3), metres (gendered models where
    given)."""
    body = body if isinstance(body, GenderedBody) else GenderedBody(body)
    if ann.frame == "world":
        ann = world_to_camera(ann, lambda b: body.root_joint(b, ann.genders))
    verts, joints = smpl_numpy(body, ann.poses, ann.betas, ann.genders)
    return verts + ann.transl[:, None], joints + ann.transl[:, None]


def tpose_height(body, betas: np.ndarray, genders: list[str] | None = None) -> np.ndarray:
    """(P, S) betas -> (P,) zero-pose height (max - min vertex y), metres (spec dto §4)."""
    betas = np.asarray(betas, np.float32).reshape(-1, np.shape(betas)[-1])
    verts, _ = smpl_numpy(body, np.zeros((len(betas), 72), np.float32), betas, genders)
    return verts[..., 1].max(1) - verts[..., 1].min(1)


def load_image_fn(images: Path) -> Callable[[ImageAnnotation], np.ndarray]:
    """Image reader for ``evaluate``: ``training.data.dataset.read_image`` under the root
    ``images``."""
    return functools.partial(read_image, images)


def evaluate(
    benchmark: str,
    annotations: list[ImageAnnotation],
    load_image: Callable[[ImageAnnotation], np.ndarray],
    predictor: Callable[[np.ndarray, ImageAnnotation], Prediction],
    body,
    h36m_regressor: np.ndarray | None = None,
    extra_regressor: np.ndarray | None = None,
    body_verts: np.ndarray | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate ``predictor`` on ``annotations``; returns the benchmark's metric dict plus
    timing."""
    needs_h36m = benchmark in ("3dpw", "hi4d", "mupots", "panoptic")
    if needs_h36m and h36m_regressor is None:
        raise ValueError(
            f"[training.eval] {benchmark} needs --h36m-regressor (J_regressor_h36m_correct.npy)"
        )
    if benchmark == "rh" and extra_regressor is None:
        raise ValueError(
            "[training.eval] rh needs --extra-regressor (J_regressor_extra.npy, SPIN's 9 joints)"
        )
    acc = {"rh": RelativeHumanEval, "3dpw": ThreeDPWEval, "hi4d": ThreeDPWEval, "agora": AgoraEval,
           "bedlam": AgoraEval, "mupots": MuPoTSEval,
           "panoptic": PanopticEval}[benchmark]()  # fmt: skip
    h36m = lambda v: np.einsum("jv,pvc->pjc", h36m_regressor, v)  # noqa: E731
    seconds = []
    for ann in tqdm(annotations, desc=f"eval {benchmark}", disable=not progress):
        image = load_image(ann)
        t0 = time.perf_counter()
        pred = predictor(image, ann)
        seconds.append(time.perf_counter() - t0)
        pv, pj = pred.verts, pred.joints
        if (
            benchmark == "rh"
        ):  # every person is CrowdPose-14 (19-joint BK / OCHuman mapped by the reader)
            cp14 = np.concatenate([pj[:, :24], np.einsum("jv,pvc->pjc", extra_regressor, pv)], 1)
            cp14 = cp14[:, CROWDPOSE14_FROM_SMPL_EXTRA]
            depth = np.asarray(pred.transl).reshape(-1, 3)[:, 2]
            acc.add(_project(cp14, pred.K), depth, ann.keypoints_2d[:, :14], ann.depth_id, ann.age)
        elif benchmark in ("3dpw", "hi4d", "agora", "bedlam"):
            gv, gj = gt_meshes(body, ann)
            if benchmark in ("3dpw", "hi4d"):
                heights = {}
                if pred.betas is not None:
                    neutral = body.neutral if isinstance(body, GenderedBody) else body
                    heights = {"pred_height_m": tpose_height(neutral, pred.betas),
                               "gt_height_m": tpose_height(body, ann.betas,
                                                           ann.genders)}  # fmt: skip
                acc.add(_project(pj[:, :24], pred.K), h36m(pv), pv, _project(gj[:, :24], ann.K),
                        h36m(gv), gv, focal_px=(pred.K[1, 1], ann.K[1, 1]), **heights)  # fmt: skip
            else:
                sel = slice(None) if body_verts is None else body_verts
                acc.add(_project(pj[:, :24], pred.K), pj[:, :24], pv[:, sel],
                        _project(gj[:, :24], ann.K), gj[:, :24], gv[:, sel],
                        ann.is_kid)  # fmt: skip
        elif benchmark == "mupots":
            p3 = h36m(pv)
            acc.add(_project(p3, pred.K), p3, ann.keypoints_2d[..., :2], ann.keypoints_3d[..., :3],
                    ann.keypoints_3d[..., 3] > 0)  # fmt: skip
        else:  # panoptic
            p3 = h36m(pv)
            acc.add(ann.image, _project(p3, pred.K), p3, ann.keypoints_2d, ann.keypoints_3d)
    out = acc.result()
    out["num_images"] = len(annotations)
    out["ms_per_image"] = 1000 * float(np.mean(seconds)) if seconds else None
    return out


def write_report(
    out_dir: Path, benchmark: str, metrics: dict, settings: dict
) -> tuple[Path, Path]:
    """``report.json`` (metrics + settings) and a readable ``report.md`` table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": benchmark, "metrics": metrics, "settings": settings}
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(payload, indent=1, default=str))
    lines = [f"# {benchmark} evaluation", "", "| metric | value |", "|---|---|"]

    def fmt(v):
        return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    for key, value in metrics.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                lines.append(f"| {key} / {sub} | {fmt(v)} |")
        else:
            lines.append(f"| {key} | {fmt(value)} |")
    lines += ["", "Settings:", ""] + [f"- {k}: `{v}`" for k, v in settings.items()]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines) + "\n")
    return md_path, json_path


def _model_config(text: str):
    text = text.strip()
    return json.loads(text) if text.startswith("{") else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARK_FORMAT))
    parser.add_argument("--annots", required=True, help="the benchmark's annotation npz")
    parser.add_argument(
        "--images", required=True, help="image root (annotation keys are relative to it)"
    )
    parser.add_argument(
        "--checkpoint", required=True, help="official or our pytorch_model.bin / .pth"
    )
    parser.add_argument(
        "--model",
        default="auto",
        help="auto (the official preset detected from the checkpoint), a preset name, or a JSON "
        "dict of build_model overrides",
    )
    parser.add_argument("--smpl", required=True, help="SMPL_NEUTRAL .npz/.pkl (plain arrays)")
    parser.add_argument("--kid-template", help="smpl_kid_template.npy (needed for 11-beta models)")
    parser.add_argument(
        "--smpl-male", help="SMPL_MALE .npz/.pkl: GT of people annotated male (3DPW, Hi4D)"
    )
    parser.add_argument(
        "--smpl-female", help="SMPL_FEMALE .npz/.pkl: GT of people annotated female"
    )
    parser.add_argument(
        "--allow-neutral-gt",
        action="store_true",
        help="neutral GT for gendered people when a gendered model is missing (not official)",
    )
    parser.add_argument("--h36m-regressor", help="J_regressor_h36m_correct.npy (17, V)")
    parser.add_argument("--extra-regressor", help="J_regressor_extra.npy (9, V)")
    parser.add_argument("--body-verts", help="body_verts_smpl.npy vertex subset for AGORA MVE")
    parser.add_argument("--conf", type=float, default=0.3)
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", required=True, help="report folder")
    args = parser.parse_args(argv)

    state_dict = read_state_dict(args.checkpoint)
    preset = detect_config(state_dict) if args.model == "auto" else _model_config(args.model)
    model = build_model(preset)
    load_checkpoint(model, state_dict, strict=True)
    body = SMPLLayer(args.smpl, args.kid_template, model.cfg.num_betas)
    load = lambda p: None if p is None else np.load(p).astype(np.float64)  # noqa: E731
    annotations = read(BENCHMARK_FORMAT[args.benchmark], args.annots)
    if args.limit:
        annotations = annotations[: args.limit]
    load_image = load_image_fn(Path(args.images))

    predictor = NetworkPredictor(model, body, args.conf, args.device, args.benchmark == "panoptic")
    body_verts = None if args.body_verts is None else np.load(args.body_verts).astype(np.int64)
    nb, kid = model.cfg.num_betas, args.kid_template
    files = {"male": args.smpl_male, "female": args.smpl_female}
    gendered = {g: SMPLLayer(path, kid, nb) for g, path in files.items() if path}
    # CPU copies for the GT meshes; gendered models for gendered people (official 3DPW / Hi4D
    # protocol).
    gt_body = GenderedBody(
        SMPLLayer(args.smpl, kid, nb), **gendered, allow_neutral_gt=args.allow_neutral_gt
    )
    metrics = evaluate(args.benchmark, annotations, load_image, predictor, gt_body,
                       load(args.h36m_regressor), load(args.extra_regressor),
                       body_verts)  # fmt: skip
    settings = {k: v for k, v in vars(args).items() if v is not None}
    md, js = write_report(Path(args.out), args.benchmark, metrics, settings)
    print(md.read_text())
    print(f"[training.eval] wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
