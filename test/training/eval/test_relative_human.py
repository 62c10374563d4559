"""PCRD, the missed-person penalty, age groups and mPCKh on a hand-worked image."""

from __future__ import annotations

import numpy as np
import pytest

from training.eval.relative_human import RelativeHumanEval, depth_relation


def person(x0: float) -> np.ndarray:
    """(14, 3) CrowdPose-like joints spread over a 20x40 px box at x0, all visible."""
    ys = np.linspace(0, 40, 14)
    xs = x0 + np.linspace(0, 20, 14)
    return np.stack([xs, ys, np.ones(14)], 1)


def test_depth_relation_codes():
    np.testing.assert_array_equal(
        depth_relation(np.array([0.0, 0.19, -0.5, 0.5, 0.2])), [0, 0, -1, 1, 9]
    )


def test_pcdr_with_miss_penalty_and_age_groups():
    gt = np.stack([person(0), person(100), person(200), person(300)])
    depth_id = np.array([0, 0, 1, 2])
    age = np.array([0, 2, 0, 3])  # adult, kid, adult, baby (missed)
    pred_kp = gt[:3, :, :2] + 1.0  # the baby (GT 3) is missed
    pred_z = np.array([3.0, 3.1, 2.0])  # 0~1 eq (correct); 2 predicted nearer than 0 and 1 (wrong)
    ev = RelativeHumanEval()
    match = ev.add(pred_kp, pred_z, gt, depth_id, age)
    np.testing.assert_array_equal(match, [0, 1, 2, -1])
    r = ev.result()
    # unordered pairs (0,1) eq ok, (0,2) and (1,2) farther but predicted nearer; 0.3 for the missed
    # baby
    assert r["PCRD_0.2"] == pytest.approx(1 / (3 + 0.3))
    assert r["PCRD_age"]["kid"] == pytest.approx(
        1 / 2
    )  # pairs with the kid: (0,1) ok, (1,2) wrong
    assert r["PCRD_age"]["adult"] == pytest.approx(1 / 3)  # every pair has an adult
    assert r["PCRD_age"]["baby"] == pytest.approx(0.0)  # only the penalty
    assert r["PCRD_age"]["teen"] is None
    assert r["PCRD_relation"] == {"eq": 1.0, "closer": None, "farther": 0.0}
    assert r["recall"] == pytest.approx(0.75) and r["precision"] == pytest.approx(1.0)
    assert r["mPCKh"] == pytest.approx(1.0)  # 1.4 px error << 0.143 x 44.7 px


def test_mpckh_is_a_per_person_mean():
    gt = np.stack([person(0), person(100)])
    pred = gt[:, :, :2].copy()
    pred[0, :7] += 10.0  # 14.1 px > 0.143 * 44.7 = 6.4 px on half the joints of person 0
    ev = RelativeHumanEval()
    ev.add(pred, np.array([3.0, 3.0]), gt, np.array([-1, -1]), np.array([0, 0]))
    assert ev.result()["mPCKh"] == pytest.approx(0.75)
    assert ev.result()["PCRD_0.2"] is None  # unknown layers: no pairs, no penalty


def test_invalid_gt_joints_stretch_the_gt_box_to_minus_two():
    far = person(1000)[None]
    pred = far[:, :, :2].copy()
    ev = RelativeHumanEval()
    assert ev.add(pred, np.array([3.0]), far, np.array([0]), np.array([0]))[0] == 0
    far[0, 0, 2] = (
        0  # one invalid joint: the GT box now reaches (-2, -2), IoU 800 / (1022 x 42) < 0.05
    )
    assert ev.add(pred, np.array([3.0]), far, np.array([0]), np.array([0]))[0] == -1
    nothing = far.copy()
    nothing[..., 2] = 0  # no valid joint: dropped, neither matched nor missed
    assert ev.add(pred, np.array([3.0]), nothing, np.array([0]), np.array([0]))[0] == -2
    assert ev.num_gt == 2


def test_an_image_without_detections_counts_every_person_as_missed():
    ev = RelativeHumanEval()
    gt = np.stack([person(0), person(100)])
    match = ev.add(np.zeros((0, 14, 2)), np.zeros(0), gt, np.array([0, 1]), np.array([0, 1]))
    np.testing.assert_array_equal(match, [-1, -1])
    r = ev.result()
    assert r["PCRD_0.2"] == 0.0 and r["recall"] == 0.0 and r["num_gt"] == 2


def test_a_19_joint_child_is_mapped_matched_and_counted_in_its_age_group(tmp_path):
    """An image of the BK subset (7-character stem): an adult in CrowdPose-14 and a child in the
    19-joint BK layout. The child is mapped to CrowdPose-14 (neck invalid, as the official name
    matching), matched, and its pair counts for "kid"."""
    from training.data.formats import read_relative_human

    rng = np.random.default_rng(0)
    adult = np.concatenate([rng.uniform(100, 200, (14, 2)), np.ones((14, 1))], 1)
    bk = {"Head_top": 0, "Nose": 1, "Neck": 2, "L_Eye": 3, "R_Eye": 4, "L_Shoulder": 5,
          "R_Shoulder": 6, "L_Elbow": 7, "R_Elbow": 8, "L_Wrist": 9, "R_Wrist": 10, "L_Hip": 11,
          "R_Hip": 12, "L_Knee": 13, "R_Knee": 14, "L_Ankle": 15, "R_Ankle": 16, "L_BigToe": 17,
          "R_BigToe": 18}  # fmt: skip
    cp14 = ["L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hip",
            "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "Head_top"]  # fmt: skip
    child19 = np.concatenate([rng.uniform(300, 380, (19, 2)), np.ones((19, 1))], 1).astype(
        np.float32
    )
    people = [
        {"kp2d": adult.reshape(-1), "depth_id": 0, "age": 0, "bbox": [100, 100, 200, 200]},
        {"kp2d": child19.reshape(-1), "depth_id": 1, "age": 2, "bbox": [300, 300, 380, 380]},
    ]
    np.savez(tmp_path / "test_annots.npz", annots=np.array({"bk00001.jpg": people}, dtype=object))
    (ann,) = read_relative_human(tmp_path / "test_annots.npz")
    assert ann.extras["kp_layout"] == ["crowdpose14", "bk19"] and ann.keypoints_2d.shape == (
        2,
        14,
        3,
    )
    child = ann.keypoints_2d[1]
    for j, name in enumerate(cp14):  # by joint name, independent of the code's index table
        np.testing.assert_array_equal(child[j], child19[bk[name]])
    assert child[13, 2] == 0  # "Neck" (19) is not CrowdPose's "Neck_LSP": invalid, as officially

    pred = ann.keypoints_2d[..., :2].copy()
    ev = RelativeHumanEval()
    match = ev.add(pred, np.array([3.0, 4.0]), ann.keypoints_2d, ann.depth_id, ann.age)
    assert match.tolist() == [0, 1]
    result = ev.result()
    assert result["num_pairs"] == 1 and result["PCRD_0.2"] == 1.0
    assert result["PCRD_age"]["kid"] == 1.0 and result["PCRD_age"]["adult"] == 1.0
    assert result["PCRD_age"]["baby"] is None
    och = {"R_Shoulder": 0, "R_Elbow": 1, "R_Wrist": 2, "L_Shoulder": 3, "L_Elbow": 4,
           "L_Wrist": 5, "R_Hip": 6, "R_Knee": 7, "R_Ankle": 8, "L_Hip": 9, "L_Knee": 10,
           "L_Ankle": 11, "Head_top": 12, "Neck": 13, "R_Ear": 14, "L_Ear": 15, "Nose": 16,
           "R_Eye": 17, "L_Eye": 18}  # fmt: skip
    np.savez(tmp_path / "och.npz", annots=np.array({"och_000123.jpg": people[1:]}, dtype=object))
    (other,) = read_relative_human(tmp_path / "och.npz")  # not a 7-character stem: OCHuman layout
    assert other.extras["kp_layout"] == ["ochuman19"]
    for j, name in enumerate(cp14):
        np.testing.assert_array_equal(other.keypoints_2d[0, j], child19[och[name]])
    wrong = RelativeHumanEval()
    wrong.add(
        pred, np.array([4.0, 3.0]), ann.keypoints_2d, ann.depth_id, ann.age
    )  # child placed in front
    assert wrong.result()["PCRD_age"]["kid"] == 0.0
