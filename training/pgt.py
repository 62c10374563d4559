"""DTO pseudo-GT generation: ``python -m training.pgt`` (spec dto §2-§3, §3.6, §7).

    python -m training.pgt --input coco-release.npz --format camerahmr --dataset coco \
        --images data/coco2014/images/train2014 --smpl SMPL_NEUTRAL.npz \
        --kid-template smpl_kid_template.npy \
        --depth-onnx depth_anything_v2_vitl.onnx --out pgt/coco --shard 0/8

Per image: the initial SMPL estimates of the input file (CameraHMR release, stage-A or DTO-Humans
layout) become ``HumanEstimate``s (meshes from the user's SMPL(-A)), a depth cue is obtained (the
user's ONNX relative depth network, or precomputed maps), and the public ``mahmr_ros.dto.refine``
scales every person along its camera ray and updates one shape coefficient. Optional inputs:
instance masks (``--masks``: one ``<key>.npz`` with ``masks`` (P, H, W) bool per image, people in
file order; or ``--masks-plugin module:function`` called with the image and the people) and
per-person attributes (``--attributes``: JSON ``{key: [{"age_years": .., "p_male": ..} |
{"age_class": c} | null, ...]}``; or ``--attributes-plugin``, e.g. a wrapper around your age/gender
network); without attributes DTO runs in its no-gender mode. Image acceptance follows §3.6 (some
group optimised >= 2 people and mean deviation < 1.5; the deviation gate is off by default for
metric depth maps, where the depth is measured); removed people are dropped as in the reference.

Sharding and resuming: ``--shard i/n`` takes every n-th image from i; each shard keeps its progress
in ``<out>/shards/<name>.<i>-of-<n>.pkl`` (atomic rewrite every ``--save-every`` images), so a
rerun continues where it stopped. When every shard of ``n`` is complete, the outputs are merged
into ``<out>/<name>_opt.npz`` (raw DTO layout, §7.3), ``<out>/<name>_CHMR_SMPL_OPT.npz`` (released
layout, §7.4) and ``report.{json,md}`` (images kept / dropped by reason, people in/out, mean
deviation, scale statistics).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mahmr_ros.dto import DTOConfig, PersonPrior, RelativeDepthModel, ShapeModel, refine
from mahmr_ros.geometry import axis_angle_to_rotmat, project
from mahmr_ros.types import HumanEstimate
from training.data.formats import ImageAnnotation, read
from training.smpl_layer import SMPLLayer

INPUT_FORMATS = ("camerahmr", "stage_a", "dto_humans")
ACCEPT_MEAN_DEV = 1.5


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError as error:
        raise ValueError(f"[training.pgt] --shard must look like i/n, got {text!r}") from error
    if not 0 <= i < n:
        raise ValueError(f"[training.pgt] --shard {text}: need 0 <= i < n")
    return i, n


def make_estimates(
    ann: ImageAnnotation, body: SMPLLayer, shape: ShapeModel
) -> list[HumanEstimate]:
    """The image's initial people as ``HumanEstimate`` (camera frame, metres, original-image
    pixels)."""
    with torch.no_grad():
        rot = axis_angle_to_rotmat(torch.as_tensor(ann.poses).reshape(-1, 24, 3))
        verts, joints = body(rot, torch.as_tensor(ann.betas[:, : body.num_betas]))
    t = ann.transl[:, None]
    verts, joints, rot = verts.numpy() + t, joints.numpy() + t, rot.numpy()
    K = np.asarray(ann.K, np.float64)
    out = []
    for i in range(ann.num_people):
        uv = project(verts[i].astype(np.float64), K, min_depth_m=1e-6)
        out.append(
            HumanEstimate(
                score=1.0,
                bbox_xyxy=np.r_[uv.min(0), uv.max(0)],
                rotmats=rot[i],
                betas=ann.betas[i],
                transl=ann.transl[i],
                vertices=verts[i],
                joints=joints[i],
                focal=(K[0, 0], K[1, 1]),
                principal_point=(K[0, 2], K[1, 2]),
                height_m=shape.height(ann.betas[i]),
                is_child=bool(ann.betas[i][10] > 0.5),
                track_id=f"p{i}",
                pose=ann.poses[i],
                extras={"index": i},
            )
        )
    return out


class DepthSource:
    """Depth cue per image: an ONNX relative-depth network, or precomputed ``.npy`` maps.

    Args:
        onnx: path of the user's ONNX model (disparity output, Depth-Anything convention), or None.
        maps: folder with ``<key without suffix>.npy`` (H, W) maps, or None.
        kind: what the maps hold: "disparity", "relative" (affine in depth) or "metric" (metres).
    """

    def __init__(self, onnx: str | None, maps: str | None, kind: str) -> None:
        if (onnx is None) == (maps is None):
            raise ValueError("[training.pgt] give exactly one of --depth-onnx or --depth-maps")
        self.model = RelativeDepthModel(onnx) if onnx else None
        self.maps = Path(maps) if maps else None
        self.kind = "disparity" if onnx else kind

    def __call__(self, key: str, image: np.ndarray) -> np.ndarray:
        if self.model is not None:
            return self.model(image)
        path = (self.maps / key).with_suffix(".npy")
        if not path.is_file():
            raise FileNotFoundError(f"[training.pgt] no depth map {path} for image {key!r}")
        depth = np.load(path)
        if depth.shape != image.shape[:2]:
            raise ValueError(
                f"[training.pgt] {path}: shape {depth.shape}, image is {image.shape[:2]}"
            )
        return depth


def load_plugin(spec: str):
    """``"package.module:function"`` -> the callable (pluggable mask / attribute models)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"[training.pgt] plugin {spec!r} must look like package.module:function")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"[training.pgt] cannot load plugin {spec!r}: {error}") from error


class MaskSource:
    """Instance masks per image: a folder of ``<key>.npz`` (``masks`` (P, H, W) bool, people in
    file order), or a plugin ``fn(image_bgr, humans) -> (P, H, W) bool | None``; None = no masks
    (pure z-buffer)."""

    def __init__(self, folder: str | None = None, plugin: str | None = None) -> None:
        self.folder = Path(folder) if folder else None
        self.fn = load_plugin(plugin) if plugin else None

    def __call__(self, key: str, image: np.ndarray, humans: list[HumanEstimate]):
        if self.fn is not None:
            masks = self.fn(image, humans)
        elif self.folder is not None and (self.folder / key).with_suffix(".npz").is_file():
            with np.load((self.folder / key).with_suffix(".npz")) as data:
                masks = data["masks"]
        else:
            return None
        if masks is None:
            return None
        masks = np.asarray(masks, bool)
        if masks.shape != (len(humans), *image.shape[:2]):
            raise ValueError(
                f"[training.pgt] masks for {key!r} have shape {masks.shape}, expected "
                f"({len(humans)}, {image.shape[0]}, {image.shape[1]})"
            )
        return masks


class AttributeSource:
    """Age / gender per person: a JSON file ``{key: [{"age_years", "p_male"} | {"age_class"} |
    null]}`` or a plugin ``fn(image_bgr, humans) -> list[PersonPrior | dict | None]``; None = DTO's
    no-gender mode."""

    def __init__(self, path: str | None = None, plugin: str | None = None) -> None:
        self.table = json.loads(Path(path).read_text()) if path else None
        self.fn = load_plugin(plugin) if plugin else None

    @property
    def enabled(self) -> bool:
        return self.table is not None or self.fn is not None

    def __call__(self, key: str, image: np.ndarray, humans: list[HumanEstimate]) -> list | None:
        if self.fn is not None:
            entries = self.fn(image, humans)
        elif self.table is not None and key in self.table:
            entries = self.table[key]
        else:
            return None
        if entries is None:
            return None
        if len(entries) != len(humans):
            raise ValueError(
                f"[training.pgt] attributes for {key!r}: {len(entries)} entries, {len(humans)} "
                "people"
            )
        return [
            e if e is None or isinstance(e, PersonPrior) else PersonPrior(**e) for e in entries
        ]


def process_image(
    ann, image, depth_source, body, shape, masks, attributes, config, max_mean_dev
) -> dict:
    """DTO on one image; returns ``{"status", "people" (dict of arrays) | None, "mean_dev",
    "scales"}``.

    Acceptance (§3.6): at least 2 people optimised in one group and, when ``max_mean_dev`` is not
    None, a mean height-prior deviation below it.
    """
    if ann.num_people < 2:
        return {"status": "dropped:single_person", "people": None, "n_in": ann.num_people}
    humans = make_estimates(ann, body, shape)
    depth = depth_source(ann.image, image)
    out = refine(humans, ann.K, depth, depth_source.kind, masks=masks(ann.image, image, humans),
                 priors=attributes(ann.image, image, humans), shape_model=shape, faces=body.faces,
                 config=config)  # fmt: skip
    frame = out[0].extras["dto"].get("frame", {}) if out else {}
    mean_dev = float(frame.get("mean_dev", frame.get("dev", 0.0)))
    groups = [g for g in frame.values() if isinstance(g, dict) and "n_opt" in g] or [frame]
    optimised = any(int(g.get("n_opt", 0)) >= 2 for g in groups)
    base = {"people": None, "n_in": ann.num_people, "mean_dev": mean_dev}
    if not out or not optimised:
        return {"status": "dropped:not_optimised", **base}
    if max_mean_dev is not None and mean_dev >= max_mean_dev:
        return {"status": "dropped:mean_dev", **base}
    idx = [o.extras["index"] for o in out]
    people = {
        "pose_cam": ann.poses[idx].astype(np.float32),
        "shape": np.stack([o.betas for o in out]).astype(np.float32),
        "trans_cam": np.stack([o.transl for o in out]).astype(np.float32),
        "cam_int": np.repeat(np.asarray(ann.K, np.float32)[None], len(out), 0),
        "is_released": np.ones(len(out), bool),
        "is_optimize": True,
    }
    scales = [float(o.dto_scale) for o in out]
    return {
        "status": "kept",
        "people": people,
        "n_in": ann.num_people,
        "mean_dev": mean_dev,
        "scales": scales,
    }


def _atomic_pickle(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as file:
        pickle.dump(obj, file)
    os.replace(tmp, path)


def run_shard(args, shard: tuple[int, int]) -> Path:
    """Process one shard (resuming from its progress file); returns the progress file path."""
    i, n = shard
    out = Path(args.out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    progress_path = out / "shards" / f"{args.name}.{i}-of-{n}.pkl"
    state = {"done": {}, "complete": False}
    if progress_path.is_file():
        with open(progress_path, "rb") as file:
            state = pickle.load(file)
    annotations = read(args.format, args.input, dataset=args.dataset)
    mine = [a for k, a in enumerate(sorted(annotations, key=lambda a: a.image)) if k % n == i]
    body = SMPLLayer(args.smpl, args.kid_template, 11)
    shape = ShapeModel.from_arrays(body.arrays, body.kid_template)
    depth_source = DepthSource(args.depth_onnx, args.depth_maps, args.depth_kind)
    attributes = AttributeSource(args.attributes, args.attributes_plugin)
    masks = MaskSource(args.masks, args.masks_plugin)
    config = DTOConfig(
        use_gender=attributes.enabled, drop_removed=True, **json.loads(args.dto_config)
    )
    # The prior-deviation gate is the reference's test for RELATIVE depth; a metric map is a
    # measurement, so by default metric pGT is only gated on n_opt >= 2 (override with
    # --max-mean-dev).
    max_mean_dev = args.max_mean_dev
    if max_mean_dev is None and depth_source.kind != "metric":
        max_mean_dev = ACCEPT_MEAN_DEV
    todo = [a for a in mine if a.image not in state["done"]]
    since_save = 0
    for ann in tqdm(todo, desc=f"pgt {i}/{n}", disable=args.quiet):
        image = cv2.imread(str(Path(args.images) / ann.image))
        if image is None:
            state["done"][ann.image] = {
                "status": "dropped:unreadable_image",
                "people": None,
                "n_in": ann.num_people,
            }
        else:
            state["done"][ann.image] = process_image(
                ann, image, depth_source, body, shape, masks, attributes, config, max_mean_dev
            )
        since_save += 1
        if since_save >= args.save_every:
            _atomic_pickle(state, progress_path)
            since_save = 0
    state["complete"] = True
    _atomic_pickle(state, progress_path)
    return progress_path


def merge(out: Path, name: str, num_shards: int, dataset: str | None) -> dict | None:
    """Merge complete shards into the released formats and the report; None if a shard is
    missing."""
    done: dict = {}
    for i in range(num_shards):
        path = out / "shards" / f"{name}.{i}-of-{num_shards}.pkl"
        if not path.is_file():
            return None
        with open(path, "rb") as file:
            state = pickle.load(file)
        if not state.get("complete"):
            return None
        done.update(state["done"])
    kept = {k: v["people"] for k, v in sorted(done.items()) if v["status"] == "kept"}
    np.savez(out / f"{name}_opt.npz", **{k: np.array(v, dtype=object) for k, v in kept.items()})
    released = {}
    for key, p in kept.items():
        K = p["cam_int"][0]
        cam = {
            "focal": K[[0, 1], [0, 1]].astype(np.float32),
            "princpt": K[:2, 2].astype(np.float32),
        }
        out_key = f"insta-train/{key}" if dataset and dataset.startswith("insta") else key
        released[out_key] = [
            {"smpl_param": {"shape": p["shape"][j], "pose": p["pose_cam"][j],
                            "trans": p["trans_cam"][j]},
             "cam_param": cam}
            for j in range(len(p["shape"]))
        ]  # fmt: skip
    np.savez(out / f"{name}_CHMR_SMPL_OPT.npz", annots=np.array(released, dtype=object))
    reasons: dict[str, int] = {}
    for v in done.values():
        reasons[v["status"]] = reasons.get(v["status"], 0) + 1
    devs = [v["mean_dev"] for v in done.values() if v["status"] == "kept"]
    scales = np.array([s for v in done.values() if v["status"] == "kept" for s in v["scales"]])
    report = {
        "images": len(done),
        "kept": reasons.get("kept", 0),
        "dropped": {k: c for k, c in reasons.items() if k != "kept"},
        "people_in": int(sum(v["n_in"] for v in done.values())),
        "people_out": int(sum(len(p["shape"]) for p in kept.values())),
        "mean_deviation": float(np.mean(devs)) if devs else None,
        "median_abs_log_scale": float(np.median(np.abs(np.log(scales)))) if len(scales) else None,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    lines = [f"# DTO pGT report: {name}", "", "| item | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.pgt", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--input", required=True, help="initial estimates (CameraHMR release / stage-A npz)"
    )
    parser.add_argument("--format", default="camerahmr", choices=INPUT_FORMATS)
    parser.add_argument(
        "--dataset", required=True, help="coco / mpii / insta / aic (image keys, flags)"
    )
    parser.add_argument("--images", required=True, help="image root of the annotation keys")
    parser.add_argument("--smpl", required=True, help="SMPL_NEUTRAL .npz/.pkl (plain arrays)")
    parser.add_argument(
        "--kid-template", required=True, help="smpl_kid_template.npy (SMPL-A kid blend)"
    )
    parser.add_argument("--depth-onnx", help="relative depth network in ONNX (disparity output)")
    parser.add_argument("--depth-maps", help="folder of precomputed <key>.npy depth maps instead")
    parser.add_argument(
        "--depth-kind", default="disparity", choices=("disparity", "relative", "metric")
    )
    parser.add_argument("--masks", help="folder of <key>.npz instance masks ('masks' (P, H, W))")
    parser.add_argument(
        "--masks-plugin", help="module:function(image_bgr, humans) -> (P, H, W) masks"
    )
    parser.add_argument(
        "--attributes", help="JSON of per-person age/gender; none = no-gender mode"
    )
    parser.add_argument(
        "--attributes-plugin", help="module:function(image_bgr, humans) -> list of priors"
    )
    parser.add_argument(
        "--dto-config", default="{}", help='JSON overrides of DTOConfig, e.g. {"max_side": 512}'
    )
    parser.add_argument(
        "--max-mean-dev", type=float, help="acceptance gate (default 1.5; off for metric)"
    )
    parser.add_argument(
        "--shard", default="0/1", help="i/n: process every n-th image starting at i"
    )
    parser.add_argument("--save-every", type=int, default=50, help="images between progress saves")
    parser.add_argument("--name", help="output name stem (default: the input file stem)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.name = args.name or Path(args.input).stem.replace("-release", "")
    shard = parse_shard(args.shard)
    run_shard(args, shard)
    report = merge(Path(args.out), args.name, shard[1], args.dataset)
    if report is None:
        print(
            f"[training.pgt] shard {args.shard} done; merge runs once every shard of {shard[1]} "
            "is complete"
        )
    else:
        print((Path(args.out) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
