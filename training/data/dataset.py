"""Training samples: image + targets for the network input size (spec mahmr_model §3.1, §4.5,
§4.6).

``HumanDataset`` turns one annotation file (any SMPL format of ``formats.py``) into samples:

1. world-frame formats are moved into the camera frame once (``world_to_camera``);
2. the image is read (BEDLAM close-ups rotated 90 degrees clockwise), augmented (``augment.py``;
   the RNG is seeded by (seed, epoch, index) so runs and resumes are reproducible), resized so that
   the long side is ``input_size`` and padded to multiples of 56 exactly as at inference
   (``mahmr_ros.model.preprocess``); K is scaled by r = input_size / max(H, W) without a half-pixel
   term (spec §8 #3);
3. GT meshes come from the SMPL layer; people with fewer than 4 joints inside the image are dropped
   and the sample is re-augmented (up to 10 tries) if a kept person has none of its first 22 joints
   inside;
4. targets: boxes (§4.5), 2D/3D joints, depths, GT focal, the SAT scale map (§4.6) and flags.
``j2ds_mask`` is all True, as the official loader ends up with (spec §8 #20).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from mahmr_ros.geometry import axis_angle_to_rotmat, project
from mahmr_ros.model.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess
from training.data import augment as aug
from training.data.body import GenderedBody
from training.data.formats import ImageAnnotation, read, world_to_camera
from training.data.scale_map import (
    MIN_VISIBLE_JOINTS,
    gt_boxes,
    mesh_edges,
    scale_map,
    subdivide_vertices,
    visible_joints,
)

MAX_TRIES = 10
SPINE3 = 9  # SMPL joint used by the crop rule
MATCH_JOINTS = 22


@torch.no_grad()
def smpl_numpy(
    body, poses: np.ndarray, betas: np.ndarray, genders: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Untranslated SMPL: (P, 72) axis-angle, (P, S) -> vertices (P, V, 3), joints (P, 45, 3)
    float32 m.

    ``body`` is an ``SMPLLayer`` or a ``GenderedBody`` (then ``genders`` picks each person's
    model).
    """
    rot = axis_angle_to_rotmat(torch.as_tensor(poses, dtype=torch.float32).reshape(-1, 24, 3))
    b = torch.as_tensor(betas, dtype=torch.float32)[:, : body.num_betas]
    verts, joints = body(rot, b, genders) if isinstance(body, GenderedBody) else body(rot, b)
    return verts.numpy(), joints.numpy()


def read_image(images: str | Path, ann: ImageAnnotation) -> np.ndarray:
    """(H, W, 3) uint8 BGR image of ``ann`` under the image root ``images`` (BEDLAM close-ups
    rotated 90 degrees clockwise); a missing or unreadable file raises ``FileNotFoundError`` naming
    it."""
    path = Path(images) / ann.image
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(
            f"[training.data] cannot read image {path} (annotation key {ann.image!r} under "
            f"{images})"
        )
    return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE) if ann.rotate_cw90 else image


class AugmentedDataset(torch.utils.data.Dataset):
    """What every training dataset shares: images under one root and a per-sample RNG seeded by
    (seed, epoch, index), so runs and resumes are reproducible; a sample is re-augmented (up to
    ``MAX_TRIES``) until a try keeps someone.

    Subclasses set ``annotations`` (a list of ``ImageAnnotation``) and implement
    ``_make(ann, image, rng) -> dict`` whose ``"ok"`` entry says whether the try is usable.

    Args:
        images: image root folder (the annotation keys are relative to it).
        input_size: network long side.
        augment: ``AugmentConfig`` (None = the default augmentation).
        seed: base seed of the per-sample RNG.
    """

    annotations: list[ImageAnnotation]

    def __init__(
        self, images: str | Path, input_size: int, augment: aug.AugmentConfig | None, seed: int
    ):
        self.images = Path(images)
        self.input_size = input_size
        self.augment = augment or aug.AugmentConfig()
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.annotations)

    def load_image(self, ann: ImageAnnotation) -> np.ndarray:
        return read_image(self.images, ann)

    def __getitem__(self, index: int) -> dict:
        ann = self.annotations[index]
        image = self.load_image(ann)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = None
        for _ in range(MAX_TRIES):
            sample = self._make(ann, image, rng)
            if sample["ok"]:
                break
        return sample

    def _make(self, ann: ImageAnnotation, image: np.ndarray, rng: np.random.Generator) -> dict:
        raise NotImplementedError


class HumanDataset(AugmentedDataset):
    """One annotation file as training samples.

    Args:
        fmt: reader name (``formats.READERS``); must carry SMPL parameters.
        annots: annotation file.
        images: image root folder (the annotation keys are relative to it).
        body: ``SMPLLayer`` for the GT meshes, or a ``GenderedBody`` (gendered GT where the file
            has genders, spec §4.5; a file with genders and no gendered models is an error unless
            it allows neutral GT).
        input_size: network long side (1288).
        augment: ``AugmentConfig`` (``AugmentConfig.none()`` for deterministic resizing only).
        seed: base seed of the per-sample RNG.
        reader_kwargs: extra reader arguments (e.g. ``dataset="coco"``).
    """

    def __init__(
        self,
        fmt: str,
        annots: str | Path,
        images: str | Path,
        body,
        input_size: int = 1288,
        augment: aug.AugmentConfig | None = None,
        seed: int = 0,
        reader_kwargs: dict | None = None,
    ) -> None:
        anns = read(fmt, annots, **(reader_kwargs or {}))
        missing_smpl = [a.image for a in anns if not a.has_smpl]
        if missing_smpl:
            raise ValueError(
                f"[training.data] {annots}: format {fmt!r} has no SMPL parameters (e.g. "
                f"{missing_smpl[0]}); training samples need SMPL-annotated formats"
            )
        self.name = (
            fmt
            if not reader_kwargs or "dataset" not in reader_kwargs
            else reader_kwargs["dataset"]
        )
        self.body = body if isinstance(body, GenderedBody) else GenderedBody(body)
        for (
            ann
        ) in anns:  # fail at build time, not in a loader worker, when a gendered model is missing
            self.body.keys(ann.genders, ann.num_people)
        self.annotations = cameras_frame(anns, self.body.root_joint)
        self.edges = mesh_edges(
            body.faces
        )  # scale-map subdivision, once per body (not per sample)
        super().__init__(images, input_size, augment, seed)

    # ------------------------------------------------------------------------------------- one try
    def _make(self, ann: ImageAnnotation, image: np.ndarray, rng: np.random.Generator) -> dict:
        cfg = self.augment
        K = np.asarray(ann.K, np.float32)
        poses, transl = ann.poses.copy(), ann.transl.copy()
        betas = ann.betas
        j0 = self.body.root_joint(betas, ann.genders)
        img = image
        angle = np.deg2rad(rng.uniform(-cfg.rot_deg, cfg.rot_deg)) if cfg.rot_deg > 0 else 0.0
        zoom = rng.uniform(*cfg.scale_range)
        if angle != 0.0 or zoom != 1.0:
            img, K, R3 = aug.affine(img, K, angle, zoom)
            poses, transl = aug.rotate_people(poses, transl, j0, R3)
        if rng.random() < cfg.flip:
            img = cv2.flip(img, 1)
            K = K.copy()
            K[0, 2] = img.shape[1] - 1 - K[0, 2]
            poses, transl = aug.flip_people(poses, transl, j0)
        verts, joints = smpl_numpy(self.body, poses, betas, ann.genders)
        verts, joints = verts + transl[:, None], joints + transl[:, None]
        if rng.random() < cfg.crop:
            uv = _project(joints[:, SPINE3], K)
            img = img[: aug.crop_height(img.shape[0], uv[:, 1].max(), rng)]
        img = aug.color_jitter(img, cfg.color, rng)
        if cfg.occlusion > 0:
            boxes = np.array([np.r_[p.min(0), p.max(0)] for p in _project(joints, K)]).reshape(
                -1, 4
            )
            img = aug.occlude(img, boxes, cfg.occlusion, cfg.occlusion_max_area, rng)

        tensor, meta = preprocess(np.ascontiguousarray(img), self.input_size)
        K_net = K.astype(np.float64).copy()
        K_net[:2] *= meta.scale
        j2d = _project(joints, K_net)
        vis = visible_joints(j2d, meta.resized_hw)
        keep = vis.sum(1) >= MIN_VISIBLE_JOINTS
        ok = bool(keep.any()) and bool(vis[keep, :MATCH_JOINTS].any(1).all())
        ds_boxes = None if ann.boxes_xyxy is None else ann.boxes_xyxy[keep] * meta.scale
        boxes = gt_boxes(j2d[keep], meta.resized_hw, self.input_size, ds_boxes)
        v2d = _project(subdivide_vertices(verts[keep], edges=self.edges), K_net)
        smap = scale_map(v2d, boxes, transl[keep, 2] / K_net[1, 1], meta.resized_hw)
        G = int(keep.sum())
        f32 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        targets = {
            "boxes": f32(boxes).reshape(G, 4),
            "j2ds": f32(j2d[keep]),
            "j2ds_mask": torch.ones(G, joints.shape[1], dtype=torch.bool),
            "poses": f32(poses[keep]),
            "betas": f32(betas[keep]),
            "j3ds": f32(joints[keep]),
            "transl": f32(transl[keep]),
            "depths": f32(joints[keep, 0, 2]),
            "focal": torch.tensor(float(K_net[1, 1])),
            "K": f32(K_net),
            "has_3d": torch.tensor(bool(ann.has_3d)),
            "detect_all": torch.tensor(bool(ann.detect_all_people)),
            "scale_map": f32(smap),
            "depth_ids": torch.as_tensor(ann.depth_id[keep], dtype=torch.int64),
            "resized_hw": torch.tensor(meta.resized_hw),
        }
        return {"image": tensor, "resized_hw": torch.tensor(meta.resized_hw), "targets": targets,
                "key": f"{self.name}/{ann.image}", "ok": ok}  # fmt: skip


def cameras_frame(anns: list[ImageAnnotation], root_joint_fn) -> list[ImageAnnotation]:
    """``world_to_camera`` for a whole file, with ONE root-joint call over every world-frame
    person.

    ``root_joint_fn(betas (P, S), genders list | None) -> (P, 3)`` (``GenderedBody.root_joint``).
    """
    world = [a for a in anns if a.frame == "world" and a.num_people]
    if not world:
        return [world_to_camera(a, lambda b: root_joint_fn(b, None)) for a in anns]
    genders = None
    if any(a.genders is not None for a in world):
        genders = [g for a in world for g in (a.genders or ["neutral"] * a.num_people)]
    j0 = np.asarray(root_joint_fn(np.concatenate([a.betas for a in world]), genders), np.float64)
    bounds = np.cumsum([0] + [a.num_people for a in world])
    table = {id(a): j0[bounds[i] : bounds[i + 1]] for i, a in enumerate(world)}
    out = []
    for a in anns:
        fn = (
            (lambda _betas, j=table[id(a)]: j)
            if id(a) in table
            else (lambda b: root_joint_fn(b, None))
        )
        out.append(world_to_camera(a, fn))
    return out


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 2) float64 pixels of camera-frame points (depth clamped at 1 mm)."""
    return project(np.asarray(points, np.float64), K, min_depth_m=1e-3)


def collate(samples: list[dict]) -> dict:
    """Batch samples of different padded sizes: pad to the largest with the normalised black value.

    Returns:
        ``images`` (B, 3, Hp, Wp), ``resized_hw`` (B, 2), ``targets`` list, ``keys`` list.
    """
    Hp = max(s["image"].shape[1] for s in samples)
    Wp = max(s["image"].shape[2] for s in samples)
    pad = torch.as_tensor(-IMAGENET_MEAN / IMAGENET_STD)[:, None, None]
    images = pad.expand(len(samples), 3, Hp, Wp).clone()
    for b, s in enumerate(samples):
        _, h, w = s["image"].shape
        images[b, :, :h, :w] = s["image"]
    return {
        "images": images,
        "resized_hw": torch.stack([s["resized_hw"] for s in samples]),
        "targets": [s["targets"] for s in samples],
        "keys": [s["key"] for s in samples],
    }
