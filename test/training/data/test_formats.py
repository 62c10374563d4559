"""Every reader against the synthetic file written in its format (truth from the generator's
manifest)."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import formats
from training.data.body import ToyBody

ALL_FORMATS = [
    "dto_humans_coco",
    "dto_humans_insta",
    "camerahmr",
    "stage_a",
    "dto_output",
    "agora",
    "bedlam",
    "3dpw",
    "hi4d",
    "rh",
    "mupots",
    "panoptic",
]
SMPL_FORMATS = ALL_FORMATS[:9]


def _read(synthetic_root, manifest, fmt):
    entry = manifest["formats"][fmt]
    return formats.read(entry["reader"], synthetic_root / entry["file"], **entry["kwargs"]), entry


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_reader_finds_every_image(synthetic_root, manifest, fmt):
    anns, entry = _read(synthetic_root, manifest, fmt)
    assert sorted(a.image for a in anns) == sorted(entry["images"])
    for a in anns:
        assert (synthetic_root / entry["image_root"] / a.image).is_file()
        assert a.num_people >= 1


@pytest.mark.parametrize("fmt", SMPL_FORMATS)
def test_smpl_params_match_truth_in_camera_frame(synthetic_root, manifest, fmt):
    """World-frame formats go through world_to_camera; the placed bodies must equal the
    generator's."""
    body = ToyBody()
    anns, entry = _read(synthetic_root, manifest, fmt)
    for a in anns:
        truth = {k: np.asarray(v, np.float32) for k, v in entry["images"][a.image].items()}
        cam = formats.world_to_camera(a, body.root_joint)
        assert cam.frame == "camera" and cam.betas.shape == (a.num_people, 11)
        np.testing.assert_allclose(cam.K, truth["K"], atol=1e-4)
        expected_betas = truth["betas"].copy()
        if np.abs(a.betas[:, 10]).max() == 0:  # 10-beta sources are padded with a zero kid blend
            expected_betas[:, 10] = 0
        np.testing.assert_allclose(cam.betas, expected_betas, atol=1e-6)
        verts, joints = body(cam.poses, cam.betas, cam.transl)
        verts_t, joints_t = body(truth["poses"], expected_betas, truth["transl"])
        np.testing.assert_allclose(verts, verts_t, atol=1e-4)
        np.testing.assert_allclose(joints, joints_t, atol=1e-4)


def test_world_to_camera_pivots_about_the_root_joint():
    """A 90° camera yaw with J0 != 0: t_cam = R (J0 + t) + T - J0, worked by hand."""
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], np.float32)  # +90° about y
    ann = formats.ImageAnnotation(
        image="x",
        dataset="agora",
        poses=np.zeros((1, 72)),
        betas=np.zeros((1, 11)),
        transl=np.array([[1.0, 0.0, 0.0]]),
        frame="world",
        cam_rot=R[None],
        cam_trans=np.array([[0.0, 0.0, 5.0]]),
    )
    cam = formats.world_to_camera(ann, lambda betas: np.array([[0.0, 0.0, 1.0]]))
    # J0 + t = (1, 0, 1) -> R -> (1, 0, -1); + T - J0 = (1, 0, 3)
    np.testing.assert_allclose(cam.transl, [[1.0, 0.0, 3.0]], atol=1e-6)
    np.testing.assert_allclose(cam.poses[0, :3], [0, np.pi / 2, 0], atol=1e-6)


def test_flags_per_dataset(synthetic_root, manifest):
    opt, _ = _read(synthetic_root, manifest, "dto_humans_coco")
    chmr, _ = _read(synthetic_root, manifest, "dto_humans_insta")
    pw3d, _ = _read(synthetic_root, manifest, "3dpw")
    assert all(a.has_3d for a in opt) and not any(a.has_3d for a in chmr)
    assert all(a.image.startswith("insta-train/") for a in chmr)
    assert not any(a.detect_all_people for a in pw3d) and all(a.genders for a in pw3d)


def test_agora_drops_invalid_people_and_keeps_kid_flags(synthetic_root, manifest):
    anns, entry = _read(synthetic_root, manifest, "agora")
    for a in anns:
        truth = np.asarray(entry["images"][a.image]["betas"])
        assert a.num_people == len(truth)  # the extra isValid=False person is gone
        np.testing.assert_array_equal(a.is_kid, truth[:, 10] > 0)


def test_bedlam_closeups_are_flagged_for_rotation(synthetic_root, manifest):
    anns, _ = _read(synthetic_root, manifest, "bedlam")
    assert [a.rotate_cw90 for a in anns] == ["closeup" in a.image for a in anns]
    assert sum(a.rotate_cw90 for a in anns) == 1


def test_relative_human_skips_people_without_keypoints_and_hides_hips_for_training(
    synthetic_root, manifest
):
    entry = manifest["formats"]["rh"]
    test_split = formats.read_relative_human(synthetic_root / entry["file"])
    train_split = formats.read_relative_human(synthetic_root / entry["file"], training=True)
    for a, b in zip(test_split, train_split, strict=True):
        assert a.num_people == len(
            entry["images"][a.image]["poses"]
        )  # the kp2d=None person is dropped
        assert a.keypoints_2d.shape[1:] == (14, 3) and (a.depth_id >= 0).all()
        assert (b.keypoints_2d[:, [6, 7], 2] == 0).all()
        np.testing.assert_array_equal(a.is_kid, a.age >= 2)


def test_mupots_keypoints_are_in_metres(synthetic_root, manifest):
    anns, entry = _read(synthetic_root, manifest, "mupots")
    for a in anns:
        z = a.keypoints_3d[:, 0, 2]
        np.testing.assert_allclose(
            z, np.asarray(entry["images"][a.image]["transl"])[:, 2], atol=1.0
        )
        assert (z > 1).all() and (z < 10).all()


def test_camerahmr_keys_keep_the_last_path_component(synthetic_root, manifest):
    anns, _ = _read(synthetic_root, manifest, "camerahmr")
    assert all("/" not in a.image for a in anns)
    assert all(a.keypoints_2d.shape[1:] == (44, 3) for a in anns)


def test_pad_betas_rejects_too_many():
    np.testing.assert_array_equal(formats.pad_betas(np.ones((2, 10)))[:, 10], [0, 0])
    with pytest.raises(ValueError, match="at most 11"):
        formats.pad_betas(np.ones((1, 12)))


def test_subset_keeps_people_aligned():
    ann = formats.ImageAnnotation(
        image="x",
        dataset="hi4d",
        poses=np.arange(3 * 72).reshape(3, 72),
        betas=np.zeros((3, 11)),
        transl=np.arange(9).reshape(3, 3),
        genders=["m", "f", "n"],
    )
    sub = ann.subset(np.array([False, True, True]))
    assert sub.num_people == 2 and sub.genders == ["f", "n"]
    np.testing.assert_array_equal(sub.transl, [[3, 4, 5], [6, 7, 8]])
