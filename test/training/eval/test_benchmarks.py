"""3DPW, AGORA, MuPoTS and Panoptic accumulators on hand-worked toy cases."""

from __future__ import annotations

import numpy as np
import pytest

from training.eval.benchmarks import (
    H36M_TO_MPI,
    MPI_PARENTS,
    PANOPTIC_TO_H36M,
    AgoraEval,
    MuPoTSEval,
    PanopticEval,
    ThreeDPWEval,
    rescale_bones,
)


def grid2d(n: int, x0: float = 0.0) -> np.ndarray:
    return np.stack([x0 + np.linspace(0, 30, n), np.linspace(0, 60, n)], 1)


def test_3dpw_offset_person():
    rng = np.random.default_rng(1)
    gt_h36m = rng.normal(size=(1, 17, 3))
    gt_verts = rng.normal(size=(1, 50, 3))
    shift = np.array([0.0, 0.0, 0.01])  # every non-pelvis joint 1 cm off, pelvis exact
    pred_h36m = gt_h36m + 2.0 + shift
    pred_h36m[:, 0] -= shift
    pred_verts = gt_verts + 2.0  # rigidly moved: MVE measured from each own pelvis
    ev = ThreeDPWEval()
    j2d = grid2d(24)[None]
    ev.add(j2d, pred_h36m, pred_verts, j2d, gt_h36m, gt_verts, focal_px=(110.0, 100.0),
           pred_height_m=[1.72], gt_height_m=[1.70])  # fmt: skip
    ev.add(j2d[:0], pred_h36m[:0], pred_verts[:0], j2d, gt_h36m, gt_verts, focal_px=(80.0, 100.0))
    r = ev.result()
    assert r["focal_MAE_px"] == pytest.approx(15.0) and r["focal_err_mean_px"] == pytest.approx(
        -5.0
    )
    assert r["height_err_mm"] == pytest.approx(20.0)
    assert r["recall"] == 0.5
    assert r["MPJPE_mm"] == pytest.approx(10.0)
    assert r["MVE_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["PA-MPJPE_mm"] < 10.0


def test_agora_normalised_errors_divide_by_f1():
    gt_j = np.zeros((2, 24, 3))
    gt_j[:, :, 1] = np.linspace(0, 1.7, 24)
    pred_j = gt_j[:1] + np.array([0, 0, 0.02])  # constant offset removed by mid-hip alignment
    pred_j[0, 5, 0] += 0.24  # one joint 24 cm off -> MPJPE 10 mm
    ev = AgoraEval()
    ev.add(
        grid2d(24)[None],
        pred_j,
        pred_j,
        np.stack([grid2d(24), grid2d(24, 500)]),
        gt_j,
        gt_j,
        [True, False],
    )
    r = ev.result()
    assert r["MPJPE_mm"] == pytest.approx(10.0)
    assert r["f1"] == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert r["NMJE_mm"] == pytest.approx(10.0 / r["f1"])
    assert r["kid_MPJPE_mm"] == pytest.approx(10.0)


def test_bone_rescale_restores_gt_lengths():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(17, 3))
    gt -= gt[14]
    pred = gt * 1.3
    np.testing.assert_allclose(rescale_bones(pred, gt, MPI_PARENTS), gt, atol=1e-12)


def test_mupots_all_vs_match():
    rng = np.random.default_rng(3)
    gt3 = rng.normal(scale=0.3, size=(2, 17, 3))
    gt2 = np.stack([grid2d(17), grid2d(17, 400)])
    vis = np.ones((2, 17), bool)
    pred3 = gt3[:1].copy()
    mpi_joint0 = H36M_TO_MPI[0]  # H36M index of MPI head-top
    pred3[0, mpi_joint0] += (
        gt3[0, mpi_joint0] - gt3[0, 9]
    ) * 2  # doubled last bone: rescaled back -> correct
    ev = MuPoTSEval()
    match = ev.add(gt2[:1], pred3, gt2, gt3, vis)
    np.testing.assert_array_equal(match, [0, -1])
    r = ev.result()
    assert r["PCK_match"] == pytest.approx(1.0)
    assert r["PCK_all"] == pytest.approx(0.5)


def test_panoptic_pelvis_shift_and_invisible_joints():
    gt = np.zeros((1, 24, 4))
    gt[..., 3] = 1
    gt[0, :, 1] = np.linspace(0, 1.5, 24)
    gt[0, PANOPTIC_TO_H36M[3], 3] = 0  # the J24 joint that becomes H36M joint 3 is invisible
    gt2 = np.zeros((1, 24, 3))
    gt2[0, :, :2] = np.stack([np.linspace(0, 30, 24), np.linspace(0, 60, 24)], 1)
    pred3 = gt[:, PANOPTIC_TO_H36M, :3].copy()
    pred3[0, 0, 1] -= 0.06  # the prediction already has the shifted pelvis
    pred3[0, 3, 0] += 5.0  # a huge error on the invisible joint: masked out
    ev = PanopticEval()
    ev.add("160422_haggling1/x.jpg", gt2[:, PANOPTIC_TO_H36M, :2], pred3, gt2, gt)
    r = ev.result()
    assert r["MPJPE_mm_haggling"] == pytest.approx(0.0, abs=1e-9)
    assert r["MPJPE_mm_overall"] == pytest.approx(0.0, abs=1e-9)
