"""Keypoint-only training samples: RelativeHuman for the ``rh_ft`` fine-tune (spec mahmr_model
§5.3).

RelativeHuman has no SMPL and no intrinsics: a person is CrowdPose-14 2D joints (hips marked
invisible for training, as the official loader does), a box, an ordinal depth layer and an age
class. Targets therefore carry only 2D and ordinal supervision: ``j2ds`` (G, 14, 2) with a real
visibility mask, ``boxes``, ``depth_ids``; ``has_3d`` is False so pose, shape, 3D and
absolute-depth terms are off, and the scale map is empty (its loss weight is 0 in ``rh_ft``). The
network's joints are mapped to CrowdPose-14 by the criterion (``joint_set: crowdpose14``, needs
``J_regressor_extra``).

People annotated in the 19-joint BK / OCHuman layouts (most children and babies) are mapped to
CrowdPose-14 by the reader, as the official loader does (``formats.crowdpose14_from_19``). The
image augmentation is the SMPL dataset's (``augment.py``) applied to 2D
points: rotation + zoom about the centre, flip with the CrowdPose left/right swap, top crop, colour
and occlusion.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mahmr_ros.model.preprocess import preprocess
from training.data import augment as aug
from training.data.dataset import AugmentedDataset
from training.data.formats import read_relative_human
from training.data.scale_map import MIN_VISIBLE_JOINTS, gt_boxes, map_size

#: CrowdPose-14 left/right swap for flips (L/R shoulder, elbow, wrist, hip, knee, ankle; then head,
#: neck).
CROWDPOSE14_FLIP_PERM = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]
NUM_JOINTS = 14


class KeypointDataset(AugmentedDataset):
    """RelativeHuman ``*_annots.npz`` as training samples (see the module docstring).

    Args:
        annots: the annotation file.  images: image root.  input_size: network long side.
        augment: ``AugmentConfig``.  seed: base seed of the per-sample RNG (seeded by (seed, epoch,
            index)).
    """

    def __init__(self, annots, images, input_size: int = 1288,
                 augment: aug.AugmentConfig | None = None, seed: int = 0) -> None:  # fmt: skip
        self.annotations = read_relative_human(annots, training=True)
        if not self.annotations:
            raise ValueError(f"[training.data] {annots}: no annotated people to train on")
        self.name = "rh"
        super().__init__(images, input_size, augment, seed)

    def _make(self, ann, image: np.ndarray, rng: np.random.Generator) -> dict:
        cfg = self.augment
        kp = ann.keypoints_2d[..., :2].astype(np.float64)  # (G, 14, 2) original px
        vis = ann.keypoints_2d[..., 2] > 0
        boxes = ann.boxes_xyxy.reshape(-1, 2, 2).astype(np.float64)
        img = image
        angle = np.deg2rad(rng.uniform(-cfg.rot_deg, cfg.rot_deg)) if cfg.rot_deg > 0 else 0.0
        zoom = rng.uniform(*cfg.scale_range)
        if angle != 0.0 or zoom != 1.0:
            img, _, R3 = aug.affine(img, np.eye(3, dtype=np.float32), angle, zoom)
            c = np.array([image.shape[1] / 2, image.shape[0] / 2])
            A = zoom * R3[:2, :2]
            kp = (kp - c) @ A.T + c
            corners = np.stack(
                [boxes[:, [0, 0, 1, 1], 0], boxes[:, [0, 1, 0, 1], 1]], -1
            )  # (G, 4, 2)
            corners = (corners - c) @ A.T + c
            boxes = np.stack([corners.min(1), corners.max(1)], 1)
        if rng.random() < cfg.flip:
            W = img.shape[1]
            img = cv2.flip(img, 1)
            kp = kp[:, CROWDPOSE14_FLIP_PERM]
            vis = vis[:, CROWDPOSE14_FLIP_PERM]
            kp[..., 0] = W - 1 - kp[..., 0]
            boxes = np.stack([np.stack([W - 1 - boxes[:, 1, 0], boxes[:, 0, 1]], 1),
                              np.stack([W - 1 - boxes[:, 0, 0], boxes[:, 1, 1]], 1)],
                              1)  # fmt: skip
        if rng.random() < cfg.crop:
            hips = kp[:, 6:8, 1][vis[:, 6:8]] if vis[:, 6:8].any() else kp[..., 1][vis]
            img = img[: aug.crop_height(img.shape[0], hips.max() if len(hips) else 0.0, rng)]
        img = aug.color_jitter(img, cfg.color, rng)
        if cfg.occlusion > 0:
            img = aug.occlude(
                img, boxes.reshape(-1, 4), cfg.occlusion, cfg.occlusion_max_area, rng
            )

        tensor, meta = preprocess(np.ascontiguousarray(img), self.input_size)
        kp = kp * meta.scale
        boxes = boxes.reshape(-1, 4) * meta.scale
        h, w = meta.resized_hw
        inside = vis & (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
        keep = inside.sum(1) >= MIN_VISIBLE_JOINTS
        G = int(keep.sum())
        ok = G > 0
        valid_kp = np.where(inside[keep][..., None], kp[keep], np.nan)
        lo = np.nanmin(valid_kp, 1) if G else np.zeros((0, 2))
        hi = np.nanmax(valid_kp, 1) if G else np.zeros((0, 2))
        extent = np.stack([lo, hi], 1)  # (G, 2, 2): joint extent of the visible joints
        box = (
            gt_boxes(extent, meta.resized_hw, self.input_size, boxes[keep])
            if G
            else np.zeros((0, 4))
        )
        f32 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        targets = {
            "boxes": f32(box).reshape(G, 4),
            "j2ds": f32(kp[keep]).reshape(G, NUM_JOINTS, 2),
            "j2ds_mask": torch.as_tensor(inside[keep]).reshape(G, NUM_JOINTS),
            "poses": torch.zeros(G, 72),
            "betas": torch.zeros(G, 11),
            "j3ds": torch.zeros(G, NUM_JOINTS, 3),
            "transl": torch.zeros(G, 3),
            "depths": torch.zeros(G),
            "focal": torch.tensor(float("nan")),
            "K": torch.full((3, 3), float("nan")),
            "has_3d": torch.tensor(False),
            "detect_all": torch.tensor(bool(ann.detect_all_people)),
            "scale_map": torch.zeros(*map_size(meta.resized_hw), 2),
            "depth_ids": torch.as_tensor(ann.depth_id[keep], dtype=torch.int64),
            "resized_hw": torch.tensor(meta.resized_hw),
        }
        return {"image": tensor, "resized_hw": torch.tensor(meta.resized_hw), "targets": targets,
                "key": f"rh/{ann.image}", "ok": ok}  # fmt: skip
