"""RelativeHuman keypoint-only samples: targets, 2D augmentation bookkeeping and a tiny rh_ft
training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from training.config import load_config
from training.data.augment import AugmentConfig
from training.data.keypoint_dataset import CROWDPOSE14_FLIP_PERM, KeypointDataset
from training.train import train

INPUT = 224


def rh(synthetic_root, manifest, augment):
    e = manifest["formats"]["rh"]
    return KeypointDataset(
        synthetic_root / e["file"], synthetic_root / e["image_root"], INPUT, augment
    )


def test_targets_are_the_scaled_keypoints_with_training_visibility(synthetic_root, manifest):
    ds = rh(synthetic_root, manifest, AugmentConfig.none())
    s = ds[0]
    t = s["targets"]
    G = len(t["boxes"])
    assert G >= 1 and t["j2ds"].shape == (G, 14, 2) and t["j2ds_mask"].shape == (G, 14)
    assert not t["j2ds_mask"][:, 6:8].any()  # hips are invisible for training (official loader)
    assert not bool(t["has_3d"]) and t["depth_ids"].shape == (G,)
    ann = ds.annotations[0]
    r = INPUT / 240
    kept = [np.allclose(t["j2ds"][g].numpy(), ann.keypoints_2d[p, :, :2] * r, atol=1e-4)
            for g in range(G) for p in range(ann.num_people)]  # fmt: skip
    assert sum(kept) == G


def test_flip_swaps_sides_and_mirrors(synthetic_root, manifest):
    base = rh(synthetic_root, manifest, AugmentConfig.none())[1]["targets"]
    flipped = rh(synthetic_root, manifest, dataclasses.replace(AugmentConfig.none(), flip=1.0))[1][
        "targets"
    ]
    expected = base["j2ds"].numpy()[:, CROWDPOSE14_FLIP_PERM].copy()
    expected[..., 0] = INPUT / 240 * 239 - expected[..., 0]
    np.testing.assert_allclose(flipped["j2ds"].numpy(), expected, atol=1e-3)
    assert (
        flipped["j2ds_mask"].numpy() == base["j2ds_mask"].numpy()[:, CROWDPOSE14_FLIP_PERM]
    ).all()


def test_tiny_rh_finetune_runs_with_ordinal_loss(tmp_path, synthetic_root, synthetic_smpl):
    rng = np.random.default_rng(0)
    w = rng.random((9, 700)) ** 8
    np.save(
        tmp_path / "extra.npy", w / w.sum(1, keepdims=True)
    )  # SYNTHETIC stand-in for J_regressor_extra
    cfg = load_config(Path(__file__).resolve().parents[3] / "training" / "configs" / "rh_ft.yaml")
    tiny = load_config(
        Path(__file__).resolve().parents[3] / "training" / "configs" / "tiny_cpu.yaml"
    )
    cfg.update(model=tiny["model"], init_checkpoint=None, output_dir=str(tmp_path / "run"))
    cfg["body"] = {"smpl": str(synthetic_smpl[0]), "kid_template": str(synthetic_smpl[1]),
                   "extra_regressor": str(tmp_path / "extra.npy")}  # fmt: skip
    cfg["data"].update(root=str(synthetic_root),
                       datasets=[{"format": "rh", "annots": "rh/test_annots.npz",
                                                              "images": "rh/images"}])  # fmt: skip
    cfg["train"].update(batch_size=2, num_workers=0, amp=False, max_steps=2, log_every=1)
    summary = train(cfg)
    first = summary["history"][0]
    assert np.isfinite(first["loss"]) and "depths_re" in first and "j2ds" in first
    with pytest.raises(ValueError, match="joint_set"):
        train({**cfg, "train": {**cfg["train"], "joint_set": "smpl45"}})
