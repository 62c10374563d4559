"""3DPW / Hi4D, AGORA / BEDLAM, MuPoTS-3D and CMU Panoptic accumulators (spec mahmr_model §6).

Each class takes one image at a time as plain arrays (metres, pixels) and returns a report dict
from ``result()``; millimetres are reported as ``*_mm``. Where the spec's one-line protocol leaves
a detail open, the choice is written in the class docstring.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from training.eval.metrics import detection_scores, greedy_match_2d, joint_errors, pa_errors

#: H36M-17 joints used by the 3DPW protocol (14 of 17; spec §6).
H36M_EVAL_JOINTS = [1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16]
#: H36M-17 -> MPI-INF-3DHP-17 order (same permutation for GT and prediction, spec §6).
H36M_TO_MPI = [10, 8, 14, 15, 16, 11, 12, 13, 4, 5, 6, 1, 2, 3, 0, 7, 9]
#: Parents in the MPI-17 tree (14 = pelvis root, 15 spine, 16 head/neck base, 1 thorax).
MPI_PARENTS = [16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1]
#: CMU Panoptic J24 -> H36M-17 (spec §6).
PANOPTIC_TO_H36M = [14, 2, 1, 0, 3, 4, 5, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6]
PANOPTIC_PELVIS_SHIFT_M = -0.06
PANOPTIC_SEQUENCES = ("haggling", "mafia", "ultimatum", "pizza")


def _mean_mm(values: list[float]) -> float | None:
    return float(np.mean(values) * 1000.0) if values else None


@dataclass
class ThreeDPWEval:
    """3DPW / Hi4D: MPJPE, PA-MPJPE (14 H36M joints), MVE, PA-MVE, focal and T-pose height errors;
    greedy 2D matching at IoU 0.1.

    Matching uses the first 24 projected SMPL joints, all treated as visible (spec §8 #20). Joint
    errors are pelvis-aligned at H36M joint 0; MVE aligns every vertex by that pelvis; PA-MVE is a
    similarity alignment over all vertices. Per-person errors are averaged over matched people. The
    focal error is per image in the pixels the caller passes (``training.eval`` uses original-image
    pixels; the official code reports resized-image pixels, i.e. ours x 1288 / max(H, W)).
    """

    mpjpe: list = field(default_factory=list)
    pa_mpjpe: list = field(default_factory=list)
    mve: list = field(default_factory=list)
    pa_mve: list = field(default_factory=list)
    focal_err: list = field(default_factory=list)
    height_err: list = field(default_factory=list)
    num_gt: int = 0
    num_pred: int = 0

    def add(
        self,
        pred_j2d,
        pred_h36m,
        pred_verts,
        gt_j2d,
        gt_h36m,
        gt_verts,
        focal_px: tuple[float, float] | None = None,
        pred_height_m=None,
        gt_height_m=None,
    ) -> np.ndarray:
        """Add one image.

        Args:
            pred_j2d: (P, 24, 2) px; pred_h36m: (P, 17, 3) m; pred_verts: (P, V, 3) m.
            gt_j2d: (G, 24, 2) px; gt_h36m: (G, 17, 3) m; gt_verts: (G, V, 3) m.
            focal_px: optional (predicted, GT) focal of the image, pixels (signed error pred - GT
                kept).
            pred_height_m, gt_height_m: optional (P,), (G,) zero-pose (T-pose) heights, metres.

        Returns:
            (G,) matched prediction index per GT, -1 = missed.
        """
        match = greedy_match_2d(pred_j2d, gt_j2d, None, 0.1)
        self.num_gt += len(gt_j2d)
        self.num_pred += len(pred_j2d)
        if focal_px is not None:
            self.focal_err.append(float(focal_px[0] - focal_px[1]))
        for g in np.flatnonzero(match >= 0):
            p = match[g]
            if pred_height_m is not None and gt_height_m is not None:
                self.height_err.append(abs(float(pred_height_m[p]) - float(gt_height_m[g])))
            self.mpjpe.append(joint_errors(pred_h36m[p], gt_h36m[g], 0)[H36M_EVAL_JOINTS].mean())
            self.pa_mpjpe.append(
                pa_errors(pred_h36m[p][H36M_EVAL_JOINTS], gt_h36m[g][H36M_EVAL_JOINTS]).mean()
            )
            pv = np.asarray(pred_verts[p], np.float64) - pred_h36m[p][0]
            gv = np.asarray(gt_verts[g], np.float64) - gt_h36m[g][0]
            self.mve.append(np.linalg.norm(pv - gv, axis=-1).mean())
            self.pa_mve.append(pa_errors(pv, gv).mean())
        return match

    def result(self) -> dict:
        out = {
            "MPJPE_mm": _mean_mm(self.mpjpe),
            "PA-MPJPE_mm": _mean_mm(self.pa_mpjpe),
            "MVE_mm": _mean_mm(self.mve),
            "PA-MVE_mm": _mean_mm(self.pa_mve),
            "focal_MAE_px": float(np.mean(np.abs(self.focal_err))) if self.focal_err else None,
            "focal_err_mean_px": float(np.mean(self.focal_err)) if self.focal_err else None,
            "focal_err_std_px": float(np.std(self.focal_err)) if self.focal_err else None,
            "height_err_mm": _mean_mm(self.height_err),
            "num_gt": self.num_gt,
            "num_matched": len(self.mpjpe),
        }
        out.update(detection_scores(self.num_gt, self.num_pred, len(self.mpjpe)))
        return out


@dataclass
class AgoraEval:
    """AGORA / BEDLAM validation: F1/P/R, MPJPE (SMPL-24), MVE, NMJE = MPJPE/F1, NMVE = MVE/F1.

    Both sets are aligned at the mid-hip (mean of SMPL joints 1 and 2). Vertices are the caller's
    subset (``body_verts_smpl`` when available, else all). People flagged ``is_kid`` also feed a
    kid subset.
    """

    mpjpe: list = field(default_factory=list)
    mve: list = field(default_factory=list)
    kid_mpjpe: list = field(default_factory=list)
    kid_mve: list = field(default_factory=list)
    num_gt: int = 0
    num_pred: int = 0

    def add(
        self, pred_j2d, pred_j3d, pred_verts, gt_j2d, gt_j3d, gt_verts, gt_is_kid=None
    ) -> np.ndarray:
        """Add one image: (P|G, 24, 2) px, (P|G, 24, 3) m, (P|G, V, 3) m; ``gt_is_kid`` (G,)
        bool."""
        match = greedy_match_2d(pred_j2d, gt_j2d, None, 0.1)
        kid = np.zeros(len(gt_j2d), bool) if gt_is_kid is None else np.asarray(gt_is_kid, bool)
        self.num_gt += len(gt_j2d)
        self.num_pred += len(pred_j2d)
        for g in np.flatnonzero(match >= 0):
            p = match[g]
            pr = np.asarray(pred_j3d[p], np.float64)[[1, 2]].mean(0)
            gr = np.asarray(gt_j3d[g], np.float64)[[1, 2]].mean(0)
            j = np.linalg.norm((pred_j3d[p] - pr) - (gt_j3d[g] - gr), axis=-1).mean()
            v = np.linalg.norm((pred_verts[p] - pr) - (gt_verts[g] - gr), axis=-1).mean()
            self.mpjpe.append(j)
            self.mve.append(v)
            if kid[g]:
                self.kid_mpjpe.append(j)
                self.kid_mve.append(v)
        return match

    def result(self) -> dict:
        out = detection_scores(self.num_gt, self.num_pred, len(self.mpjpe))
        mpjpe, mve = _mean_mm(self.mpjpe), _mean_mm(self.mve)
        f1 = out["f1"]
        out.update(
            MPJPE_mm=mpjpe,
            MVE_mm=mve,
            NMJE_mm=mpjpe / f1 if mpjpe is not None and f1 > 0 else None,
            NMVE_mm=mve / f1 if mve is not None and f1 > 0 else None,
            kid_MPJPE_mm=_mean_mm(self.kid_mpjpe),
            kid_MVE_mm=_mean_mm(self.kid_mve),
            num_gt=self.num_gt,
            num_matched=len(self.mpjpe),
        )
        return out


def rescale_bones(pred: np.ndarray, gt: np.ndarray, parents=MPI_PARENTS) -> np.ndarray:
    """Give every bone of ``pred`` the GT bone length, keeping its direction, root first (MuPoTS
    protocol).

    Args:
        pred, gt: (J, 3) root-aligned joints in a tree given by ``parents`` (-1 = root).
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    out = pred.copy()
    done = [p < 0 for p in parents]
    while not all(done):
        for j, p in enumerate(parents):
            if done[j] or not done[p]:
                continue
            bone = pred[j] - pred[p]
            length = np.linalg.norm(bone)
            out[j] = out[p] + (
                bone / length * np.linalg.norm(gt[j] - gt[p]) if length > 0 else 0.0
            )
            done[j] = True
    return out


@dataclass
class MuPoTSEval:
    """MuPoTS-3D 3D-PCK@150 mm on MPI joints 0-13, "All" (misses fail) and "Match" (matched only).

    Matching (per GT, a prediction may serve several GTs): the prediction with the most of MPI
    joints 1..13 within 40 px (original pixels); none within 40 px = missed. PCK counts
    non-occluded GT joints after root (MPI 14) alignment and a per-bone rescale of the prediction
    to the GT lengths.
    """

    hits: int = 0
    total_matched: int = 0
    total_all: int = 0

    def add(self, pred_h36m_2d, pred_h36m_3d, gt_h36m_2d, gt_h36m_3d, gt_vis) -> np.ndarray:
        """Add one image: (P|G, 17, 2) px and (P|G, 17, 3) m in H36M-17 order; ``gt_vis`` (G, 17)
        bool."""
        p2 = np.asarray(pred_h36m_2d, np.float64).reshape(-1, 17, 2)[:, H36M_TO_MPI]
        p3 = np.asarray(pred_h36m_3d, np.float64).reshape(-1, 17, 3)[:, H36M_TO_MPI]
        g2 = np.asarray(gt_h36m_2d, np.float64).reshape(-1, 17, 2)[:, H36M_TO_MPI]
        g3 = np.asarray(gt_h36m_3d, np.float64).reshape(-1, 17, 3)[:, H36M_TO_MPI]
        vis = np.asarray(gt_vis, bool).reshape(-1, 17)[:, H36M_TO_MPI]
        match = np.full(len(g2), -1, np.int64)
        for g in range(len(g2)):
            visible = vis[g, :14]
            self.total_all += int(visible.sum())
            if len(p2):
                near = (np.linalg.norm(p2[:, 1:14] - g2[g, 1:14], axis=-1) < 40).sum(1)
                if near.max() > 0:
                    match[g] = int(np.argmax(near))
            if match[g] < 0:
                continue
            gt_rel = g3[g] - g3[g, 14]
            pred_rel = rescale_bones(p3[match[g]] - p3[match[g], 14], gt_rel)
            err = np.linalg.norm(pred_rel - gt_rel, axis=-1)[:14]
            self.hits += int((err[visible] < 0.15).sum())
            self.total_matched += int(visible.sum())
        return match

    def result(self) -> dict:
        return {
            "PCK_all": self.hits / self.total_all if self.total_all else None,
            "PCK_match": self.hits / self.total_matched if self.total_matched else None,
            "joints_all": self.total_all,
            "joints_matched": self.total_matched,
        }


def panoptic_gt_h36m(kpts3d_j24: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, 24, 4) Panoptic J24 (xyz m + visibility) -> H36M-17 (G, 17, 3) with the pelvis shifted
    -6 cm in y, and (G, 17) bool visibility."""
    k = np.asarray(kpts3d_j24, np.float64)[:, PANOPTIC_TO_H36M]
    joints = k[..., :3].copy()
    joints[:, 0, 1] += PANOPTIC_PELVIS_SHIFT_M
    return joints, k[..., 3] > 0


@dataclass
class PanopticEval:
    """CMU Panoptic MPJPE (mm), per sequence and overall.

    Matching: per GT, the prediction with the lowest mean 2D distance (original pixels, H36M
    joints) over the joints visible in ALL GT people of the image; a prediction may be reused.
    Errors: both pelvis (joint 0) aligned; invisible GT joints add 0 but count in the mean over 17.
    "overall" averages people.
    """

    errors: dict = field(default_factory=lambda: defaultdict(list))

    def add(
        self, sequence, pred_h36m_2d, pred_h36m_3d, gt_kpts2d_j24, gt_kpts3d_j24
    ) -> np.ndarray:
        """Add one image.

        Args:
            sequence: image key or sequence name (the first of ``PANOPTIC_SEQUENCES`` it contains).
            pred_h36m_2d: (P, 17, 2) px.  pred_h36m_3d: (P, 17, 3) m.
            gt_kpts2d_j24: (G, 24, >=2) px.  gt_kpts3d_j24: (G, 24, 4) m + visibility.
        """
        gt3, vis = panoptic_gt_h36m(gt_kpts3d_j24)
        gt2 = np.asarray(gt_kpts2d_j24, np.float64)[:, PANOPTIC_TO_H36M, :2]
        name = next((s for s in PANOPTIC_SEQUENCES if s in str(sequence)), str(sequence))
        match = np.full(len(gt3), -1, np.int64)
        if len(pred_h36m_2d) == 0:
            for g in range(
                len(gt3)
            ):  # missed people count as infinitely wrong: report them separately
                self.errors["missed"].append(1.0)
            return match
        common = vis.all(0)
        if not common.any():
            common = np.ones(17, bool)
        p2 = np.asarray(pred_h36m_2d, np.float64)
        for g in range(len(gt3)):
            dist = np.linalg.norm(p2[:, common] - gt2[g, common], axis=-1).mean(1)
            match[g] = p = int(np.argmin(dist))
            err = joint_errors(pred_h36m_3d[p], gt3[g], 0) * vis[g]
            self.errors[name].append(err.mean())
            self.errors["overall"].append(err.mean())
        return match

    def result(self) -> dict:
        out = {f"MPJPE_mm_{k}": _mean_mm(v) for k, v in self.errors.items() if k != "missed"}
        out["num_missed_images_people"] = len(self.errors.get("missed", []))
        return out
