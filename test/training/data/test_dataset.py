"""Training samples: exact GT geometry without augmentation, camera bookkeeping under augmentation,
mixing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from training.data.augment import SMPL_FLIP_PERM, AugmentConfig
from training.data.body import GenderedBody
from training.data.dataset import HumanDataset, collate, smpl_numpy

INPUT = 224


def dataset(synthetic_root, manifest, body, fmt, augment, **kw):
    e = manifest["formats"][fmt]
    return HumanDataset(e["reader"], synthetic_root / e["file"], synthetic_root / e["image_root"],
                        body, INPUT, augment, reader_kwargs=e["kwargs"], **kw)  # fmt: skip


def test_unaugmented_targets_match_the_annotation(synthetic_root, manifest, body):
    ds = dataset(synthetic_root, manifest, body, "dto_humans_coco", AugmentConfig.none())
    truth = manifest["formats"]["dto_humans_coco"]["images"]
    for i in range(len(ds)):
        s = ds[i]
        t = s["targets"]
        key = s["key"].split("/", 1)[1]
        gt = truth[key]
        r = INPUT / 240  # synthetic images are 240 x 180
        assert tuple(s["resized_hw"].tolist()) == (168, 224)
        assert s["image"].shape == (3, 168, 224)
        _, joints = smpl_numpy(body, np.asarray(gt["poses"]), np.asarray(gt["betas"]))
        joints = joints + np.asarray(gt["transl"])[:, None]
        K = np.asarray(gt["K"]) * np.array([[r], [r], [1]])
        uv = joints @ K.T
        uv = uv[..., :2] / uv[..., 2:]
        keep = [
            np.allclose(uv[p], t["j2ds"][q].numpy(), atol=1e-3)
            for q in range(len(t["j2ds"]))
            for p in range(len(uv))
        ]
        assert sum(keep) == len(t["j2ds"])  # every kept person is one of the annotated ones
        assert t["focal"].item() == pytest.approx(K[1, 1], rel=1e-5)
        assert bool(t["has_3d"]) and t["betas"].shape[1] == 11
        assert t["scale_map"].shape == (6, 8, 2) and t["scale_map"][..., 0].sum() > 0
        boxes = t["boxes"].numpy() * INPUT
        assert np.all(boxes[:, 2:] > 0)


def test_rotation_and_zoom_keep_the_mesh_on_the_warped_pixels(synthetic_root, manifest, body):
    base = dataset(synthetic_root, manifest, body, "dto_humans_coco", AugmentConfig.none())
    cfg = dataclasses.replace(AugmentConfig.none(), rot_deg=15.0, scale_range=(1.3, 1.3))
    rotated = dataset(synthetic_root, manifest, body, "dto_humans_coco", cfg)
    a, b = base[0]["targets"], rotated[0]["targets"]
    rng = np.random.default_rng([0, 0, 0])
    angle = np.deg2rad(rng.uniform(-15, 15))  # the same draw as the dataset's first one
    c = np.array([240 / 2, 180 / 2]) * 224 / 240  # the warp happens in original pixels
    R2 = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    expected = (a["j2ds"].numpy() - c) @ (1.3 * R2).T + c
    assert len(b["j2ds"]) == len(a["j2ds"])
    np.testing.assert_allclose(b["j2ds"].numpy(), expected, atol=0.05)
    # depth is unchanged by a roll; the focal grows with the zoom
    assert b["focal"].item() == pytest.approx(1.3 * a["focal"].item(), rel=1e-5)


def test_flip_mirrors_the_joints_with_swapped_sides(synthetic_root, manifest, body):
    base = dataset(synthetic_root, manifest, body, "dto_humans_coco", AugmentConfig.none())
    flipped = dataset(
        synthetic_root,
        manifest,
        body,
        "dto_humans_coco",
        dataclasses.replace(AugmentConfig.none(), flip=1.0),
    )
    a, b = base[1]["targets"], flipped[1]["targets"]
    assert len(a["j2ds"]) == len(b["j2ds"])
    r = INPUT / 240
    # the synthetic body is left/right symmetric: the flipped joint j is where the mirrored joint
    # perm[j] was; the flip u' = W - 1 - u happens in original pixels (W = 240), then everything is
    # scaled by r
    mirrored = a["j2ds"].numpy()[:, SMPL_FLIP_PERM]
    mirrored[..., 0] = r * 239 - mirrored[..., 0]
    np.testing.assert_allclose(b["j2ds"].numpy()[:, :24], mirrored, atol=1.5)


def test_world_frame_dataset_collates_and_is_reproducible(synthetic_root, manifest, body):
    ds = dataset(synthetic_root, manifest, body, "agora", AugmentConfig())
    s1, s2 = ds[1], ds[1]
    assert torch.equal(s1["image"], s2["image"])  # seeded by (seed, epoch, index)
    ds.set_epoch(1)
    assert (
        not torch.equal(ds[1]["image"], s1["image"])
        or ds[1]["targets"]["j2ds"].shape != s1["targets"]["j2ds"].shape
    )
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["images"].shape[0] == 3 and batch["images"].shape[2] % 56 == 0
    assert len(batch["targets"]) == 3


def test_gendered_gt_uses_each_persons_model(synthetic_root, manifest, body, gendered):
    """3DPW people are 'm' / 'f': world -> camera and the GT meshes use the male / female models
    (§4.5)."""
    from training.data.formats import read

    e = manifest["formats"]["3dpw"]
    raw = read("3dpw", synthetic_root / e["file"])  # world frame
    ds = dataset(synthetic_root, manifest, gendered, "3dpw", AugmentConfig.none())
    seen = set()
    for world, ann in zip(raw, ds.annotations, strict=True):
        for p, g in enumerate(ann.genders):
            layer = gendered.layers[{"m": "male", "f": "female"}[g]]
            j0 = layer.root_joint(world.betas[p : p + 1]).numpy()[0]
            expected = world.cam_rot[p] @ (j0 + world.transl[p]) + world.cam_trans[p] - j0
            np.testing.assert_allclose(ann.transl[p], expected, atol=1e-4)
            j0_neutral = body.root_joint(world.betas[p : p + 1]).numpy()[0]
            assert np.abs(j0 - j0_neutral).max() > 5e-3  # the models really differ
            _, joints = smpl_numpy(gendered, ann.poses[p : p + 1], ann.betas[p : p + 1], [g])
            _, own = smpl_numpy(layer, ann.poses[p : p + 1], ann.betas[p : p + 1])
            np.testing.assert_array_equal(joints, own)
            seen.add(g)
    assert seen == {"m", "f"}
    with pytest.raises(ValueError, match="gendered SMPL"):
        dataset(synthetic_root, manifest, body, "3dpw", AugmentConfig.none())
    neutral = GenderedBody(body, allow_neutral_gt=True)
    assert len(dataset(synthetic_root, manifest, neutral, "3dpw", AugmentConfig.none())) == len(
        raw
    )


def test_keypoint_only_formats_are_refused_with_the_file_name(synthetic_root, manifest, body):
    e = manifest["formats"]["rh"]
    with pytest.raises(ValueError, match="no SMPL parameters"):
        HumanDataset(
            "rh", synthetic_root / e["file"], synthetic_root / e["image_root"], body, INPUT
        )


SMPL_FORMATS = ["dto_humans_coco", "dto_humans_insta", "camerahmr", "stage_a", "dto_output",
                "agora", "bedlam", "3dpw", "hi4d"]  # fmt: skip


@pytest.mark.parametrize("fmt", SMPL_FORMATS)
def test_every_smpl_format_yields_well_formed_samples(fmt, synthetic_root, manifest, gendered):
    ds = dataset(synthetic_root, manifest, gendered, fmt, AugmentConfig())
    for i in range(len(ds)):
        s = ds[i]
        t = s["targets"]
        G = len(t["boxes"])
        h, w = s["resized_hw"].tolist()
        assert (
            max(h, w) == INPUT and s["image"].shape[1] % 56 == 0 and s["image"].shape[2] % 56 == 0
        )
        assert (
            t["j2ds"].shape == (G, 45, 2)
            and t["j3ds"].shape == (G, 45, 3)
            and t["betas"].shape == (G, 11)
        )
        assert all(
            torch.isfinite(t[k]).all()
            for k in ("boxes", "j2ds", "j3ds", "poses", "depths", "focal")
        )
        assert (t["depths"] > 0).all() and ((t["boxes"] >= 0) & (t["boxes"] <= 1)).all()
        if s["ok"]:
            assert G >= 1 and t["scale_map"][..., 0].sum() > 0
