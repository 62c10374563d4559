"""pGT generation on synthetic crowds (mahmr_ros.testing): the planted metric translations come
back, shards merge into the released formats, and a rerun resumes from the progress files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from mahmr_ros.testing import make_crowd
from training.data.formats import read
from training.pgt import main, parse_shard
from training.smpl_layer import SMPLLayer

HW = (240, 320)
PEOPLE = 7
RELAXED = json.dumps({"min_area_fraction": 2e-4})  # far people are small at this test resolution


@pytest.fixture(scope="module")
def crowd_set(tmp_path_factory, synthetic_smpl):
    """Four synthetic crowds (7 people each): stage-A npz, images, depth maps, masks, attributes;
    truth."""
    root = tmp_path_factory.mktemp("crowd")
    annots, truth, attributes = {}, {}, {}
    for seed in range(4):
        scene = make_crowd(PEOPLE, seed=seed, image_hw=HW, num_vertices=700)
        key = f"img_{seed:03d}.jpg"
        rot = np.stack([h.rotmats[0] for h in scene.estimates])
        from scipy.spatial.transform import Rotation

        poses = np.zeros((PEOPLE, 72), np.float32)
        poses[:, :3] = Rotation.from_matrix(rot).as_rotvec()
        annots[key] = {
            "trans_cam": np.stack([h.transl for h in scene.estimates]).astype(np.float32),
            "pose_cam": poses,
            "shape": np.stack([h.betas for h in scene.estimates]).astype(np.float32),
            "cam_int": np.repeat(scene.K[None].astype(np.float32), PEOPLE, 0),
        }
        truth[key] = (scene.true_depths(), np.stack([h.pelvis for h in scene.truth]),
                      np.stack([h.pelvis for h in scene.estimates]))  # fmt: skip
        (root / "images").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "images" / key), np.full((*HW, 3), 128, np.uint8))
        (root / "depth").mkdir(exist_ok=True)
        np.save(root / "depth" / key.replace(".jpg", ".npy"), scene.depth_m)
        (root / "disparity").mkdir(exist_ok=True)
        np.save(
            root / "disparity" / key.replace(".jpg", ".npy"),
            scene.relative_disparity(seed=seed)[0],
        )
        attributes[key] = [{"age_class": int(c)} for c in scene.classes]
        (root / "masks").mkdir(exist_ok=True)
        np.savez(root / "masks" / key.replace(".jpg", ".npz"), masks=scene.masks)
    np.savez(root / "crowd.npz", annots=np.array(annots, dtype=object))
    (root / "attributes.json").write_text(json.dumps(attributes))
    return root, truth


def args_for(root, smpl, out, shard="0/1", kind="metric"):
    maps = "depth" if kind == "metric" else "disparity"
    return ["--input", str(root / "crowd.npz"), "--format", "stage_a", "--dataset", "coco",
            "--images", str(root / "images"), "--smpl", str(smpl[0]), "--kid-template",
            str(smpl[1]), "--depth-maps", str(root / maps), "--depth-kind", kind, "--masks",
            str(root / "masks"), "--dto-config", RELAXED, "--shard", shard, "--out", str(out),
            "--quiet", "--save-every", "1"]  # fmt: skip


def depth_errors(out, body, truth):
    """(before, after) relative pelvis-depth errors of every released person, matched to the truth
    by ray."""
    released = read("dto_humans", out / "crowd_CHMR_SMPL_OPT.npz", dataset="coco")
    assert all(a.has_3d and a.betas.shape[1] == 11 for a in released)
    before, after = [], []
    for ann in released:
        true_z, true_pelvis, est_pelvis = truth[ann.image]
        with torch.no_grad():
            pelvis = (
                body.root_joint(torch.as_tensor(ann.betas)).numpy() + ann.transl
            )  # zero body pose
        rays = true_pelvis / np.linalg.norm(true_pelvis, axis=1, keepdims=True)
        for p in pelvis:  # DTO moves people along their ray: identify them by direction
            j = int(np.argmax(rays @ (p / np.linalg.norm(p))))
            after.append(abs(p[2] - true_z[j]) / true_z[j])
            before.append(abs(est_pelvis[j][2] - true_z[j]) / true_z[j])
    return np.array(before), np.array(after)


def test_shard_parsing():
    assert parse_shard("2/8") == (2, 8)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("two")
    with pytest.raises(ValueError, match="0 <= i < n"):
        parse_shard("8/8")


def test_pgt_recovers_planted_metric_translations(tmp_path, crowd_set, synthetic_smpl):
    root, truth = crowd_set
    assert main(args_for(root, synthetic_smpl, tmp_path)) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["images"] == 4 and report["kept"] >= 3
    before, after = depth_errors(tmp_path, SMPLLayer(*synthetic_smpl, num_betas=11), truth)
    assert len(after) >= 9
    assert np.median(before) > 0.08
    assert np.median(after) < 0.03
    raw = np.load(tmp_path / "crowd_opt.npz", allow_pickle=True)
    first = raw[raw.files[0]][()]
    assert {"pose_cam", "shape", "trans_cam", "cam_int", "is_released", "is_optimize"} <= set(
        first
    )


def test_relative_depth_with_attributes_improves_depths(tmp_path, crowd_set, synthetic_smpl):
    root, truth = crowd_set
    args = args_for(root, synthetic_smpl, tmp_path, kind="disparity")
    cfg = json.dumps(
        {"min_area_fraction": 2e-4, "alpha_min_default": 0.0, "far_cue_threshold": None}
    )
    args[args.index("--dto-config") + 1] = cfg
    assert main([*args, "--attributes", str(root / "attributes.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kept"] >= 1 and report["kept"] + sum(report["dropped"].values()) == 4
    before, after = depth_errors(tmp_path, SMPLLayer(*synthetic_smpl, num_betas=11), truth)
    assert np.median(after) < 0.6 * np.median(before)


def test_shards_merge_and_resume(tmp_path, crowd_set, synthetic_smpl):
    root, _ = crowd_set
    assert main(args_for(root, synthetic_smpl, tmp_path, "0/2")) == 0
    assert not (tmp_path / "report.json").exists()  # shard 1 missing: no merge yet
    progress = tmp_path / "shards" / "crowd.0-of-2.pkl"
    stamp = progress.stat().st_mtime_ns
    assert main(args_for(root, synthetic_smpl, tmp_path, "1/2")) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["images"] == 4 and report["people_in"] == 4 * PEOPLE
    # rerunning a finished shard does no work and rewrites only its final state
    assert main(args_for(root, synthetic_smpl, tmp_path, "0/2")) == 0
    assert progress.stat().st_mtime_ns >= stamp
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_missing_depth_map_names_the_file(tmp_path, crowd_set, synthetic_smpl):
    root, _ = crowd_set
    args = args_for(root, synthetic_smpl, tmp_path)
    args[args.index("--depth-maps") + 1] = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        main(args)


PLUGIN_CALLS = []


def age_plugin(image, humans):
    """A pluggable attribute model for the test: everyone an adult of unknown gender (class 5)."""
    PLUGIN_CALLS.append(len(humans))
    return [{"age_class": 5} for _ in humans]


def test_attribute_plugin_is_called_per_image(tmp_path, crowd_set, synthetic_smpl):
    root, _ = crowd_set
    PLUGIN_CALLS.clear()
    args = [
        *args_for(root, synthetic_smpl, tmp_path),
        "--attributes-plugin",
        f"{__name__}:age_plugin",
    ]
    assert main(args) == 0
    assert PLUGIN_CALLS == [PEOPLE] * 4
    with pytest.raises(ValueError, match="module:function"):
        main([*args_for(root, synthetic_smpl, tmp_path / "x"), "--masks-plugin", "nocolon"])
