"""RelativeHuman evaluation: PCDR^0.2 (printed ``PCRD_0.2``), per age group and relation, mPCKh,
F1.

Protocol of the official evaluation as specified in dto.md §8 (identical metric code in MA-HMR):

* GT people without any valid joint are dropped; invalid GT joints sit at (-2, -2).
* Matching, greedy per image: the cost of a (prediction, GT) pair is the Frobenius norm of the 2D
  differences over the GT's valid joints; pairs are taken by increasing cost and accepted if both
  sides are unassigned and the IoU of the keypoint boxes is >= 0.05, the GT box INCLUDING the (-2,
  -2) joints.
* PCDR over all unordered pairs (r < c) of matched people: dz = z_c - z_r (predicted translation
  z), d = depth_id_c - depth_id_r; "eq" (d = 0) is correct if |dz| < 0.2 m, "closer" (d < 0) if dz
  < -0.2, "farther" (d > 0) if dz > 0.2. PCDR = correct / (pairs + 0.3 x missed GT people).
* Per age: pairs where at least one member has that age; denominator + 0.3 x missed people of that
  age.
* mPCKh: per matched person the fraction of valid joints with error / GT-box diagonal < 0.143,
  averaged.
* Detection: precision, recall and F1 with TP = matched pairs (the official printout's TP
  = #predictions - #misses quirk is not reproduced).
People whose ``depth_id`` is unknown (< 0) take no part in pairs and cost no penalty (RH always has
it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mahmr_ros.geometry import box_iou
from training.eval.metrics import detection_scores, keypoint_box

AGE_GROUPS = ("adult", "teen", "kid", "baby")
RELATIONS = ("eq", "closer", "farther")
PCRD_THRESH_M = 0.2
MISS_PENALTY = 0.3
MATCH_IOU = 0.05
PCKH_RATIO = 0.143


def depth_relation(dz: np.ndarray, thresh: float = PCRD_THRESH_M) -> np.ndarray:
    """Predicted relation codes from depth differences z_i - z_j (m): 0 eq, -1 closer, +1 farther,
    9 none."""
    dz = np.asarray(dz, np.float64)
    out = np.full(dz.shape, 9, np.int64)
    out[np.abs(dz) < thresh] = 0
    out[dz < -thresh] = -1
    out[dz > thresh] = 1
    return out


@dataclass
class RelativeHumanEval:
    """Accumulates RelativeHuman results image by image; ``result()`` gives the report dict."""

    thresh_m: float = PCRD_THRESH_M
    correct: dict = field(
        default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS, *RELATIONS)}
    )
    pairs: dict = field(default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS, *RELATIONS)})
    penalty: dict = field(default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS)})
    pck_person: list = field(default_factory=list)
    num_gt: int = 0
    num_pred: int = 0
    num_matched: int = 0

    def add(
        self,
        pred_kp2d: np.ndarray,
        pred_depth_m: np.ndarray,
        gt_kp2d: np.ndarray,
        gt_depth_id: np.ndarray,
        gt_age: np.ndarray,
    ) -> np.ndarray:
        """Add one image.

        Args:
            pred_kp2d: (P, 14, 2) predicted CrowdPose-14 joints, original-image pixels.
            pred_depth_m: (P,) predicted translation z, metres.
            gt_kp2d: (G, 14, 3) GT joints (x, y, visibility > 0 = valid).
            gt_depth_id: (G,) ordinal depth layer, smaller = nearer; -1 = unknown.
            gt_age: (G,) 0 adult, 1 teen, 2 kid, 3 baby; -1 = unknown (counted in "all" only).

        Returns:
            (G,) matched prediction index per GT (-1 = missed, -2 = dropped: no valid joint).
        """
        gt_kp2d = np.asarray(gt_kp2d, np.float64).reshape(len(gt_kp2d), -1, 3)
        valid = gt_kp2d[..., 2] > 0
        result = np.full(len(gt_kp2d), -2, np.int64)
        used = np.flatnonzero(valid.any(1))
        gt = gt_kp2d[used]
        valid = valid[used]
        gt_xy = np.where(valid[..., None], gt[..., :2], -2.0)
        pred = np.asarray(pred_kp2d, np.float64).reshape(len(pred_kp2d), gt_kp2d.shape[1], 2)
        match = rh_match(pred, gt_xy, valid)
        result[used] = match
        depth_id = np.asarray(gt_depth_id, np.int64)[used]
        ages = [
            AGE_GROUPS[a] if 0 <= a < len(AGE_GROUPS) else None
            for a in np.asarray(gt_age, np.int64)[used]
        ]
        self.num_gt += len(gt)
        self.num_pred += len(pred)
        self.num_matched += int((match >= 0).sum())
        known = depth_id >= 0
        for g in np.flatnonzero((match < 0) & known):
            self._count(self.penalty, MISS_PENALTY, {ages[g]})
        ok = np.flatnonzero((match >= 0) & known)
        depth = np.asarray(pred_depth_m, np.float64)
        for a, r in enumerate(ok):
            for c in ok[a + 1 :]:
                truth = int(np.sign(depth_id[c] - depth_id[r]))
                guess = int(depth_relation(depth[match[c]] - depth[match[r]], self.thresh_m))
                relation = {0: "eq", -1: "closer", 1: "farther"}[truth]
                hit = float(guess == truth)
                self._count(self.correct, hit, {ages[r], ages[c]}, relation)
                self._count(self.pairs, 1.0, {ages[r], ages[c]}, relation)
        for g in np.flatnonzero(match >= 0):
            diag = np.linalg.norm(np.diff(keypoint_box(gt_xy[g]).reshape(2, 2), axis=0))
            err = np.linalg.norm(pred[match[g]] - gt_xy[g], axis=-1)[valid[g]]
            self.pck_person.append(float((err < PCKH_RATIO * diag).mean()))
        return result

    @staticmethod
    def _count(table: dict, value: float, ages: set, relation: str | None = None) -> None:
        table["all"] += value
        for age in ages - {None}:
            table[age] += value
        if relation is not None:
            table[relation] += value

    def result(self) -> dict:
        """PCRD (overall, per age, per relation), mPCKh, precision/recall/F1 and the raw counts."""

        def ratio(num: float, den: float) -> float | None:
            return num / den if den > 0 else None

        out = {
            "PCRD_0.2": ratio(self.correct["all"], self.pairs["all"] + self.penalty["all"]),
            "PCRD_age": {
                a: ratio(self.correct[a], self.pairs[a] + self.penalty[a]) for a in AGE_GROUPS
            },
            "PCRD_relation": {r: ratio(self.correct[r], self.pairs[r]) for r in RELATIONS},
            "mPCKh": float(np.mean(self.pck_person)) if self.pck_person else None,
            "num_gt": self.num_gt,
            "num_pred": self.num_pred,
            "num_matched": self.num_matched,
            "num_pairs": self.pairs["all"],
        }
        out.update(detection_scores(self.num_gt, self.num_pred, self.num_matched))
        return out


def rh_match(
    pred: np.ndarray, gt_xy: np.ndarray, valid: np.ndarray, iou_thresh: float = MATCH_IOU
) -> np.ndarray:
    """Official RelativeHuman greedy matching (see the module docstring).

    Args:
        pred: (P, J, 2) px.  gt_xy: (G, J, 2) px with invalid joints at (-2, -2).  valid: (G, J)
            bool.

    Returns:
        (G,) prediction index per GT, -1 = missed.
    """
    G, P = len(gt_xy), len(pred)
    match = np.full(G, -1, np.int64)
    if G == 0 or P == 0:
        return match
    diff = (pred[None] - gt_xy[:, None]) * valid[:, None, :, None]  # (G, P, J, 2)
    cost = np.sqrt((diff**2).sum((-1, -2)))
    used = np.zeros(P, bool)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        g, p = divmod(int(flat), P)
        if match[g] >= 0 or used[p]:
            continue
        if box_iou(keypoint_box(pred[p]), keypoint_box(gt_xy[g])) >= iou_thresh:
            match[g], used[p] = p, True
    return match
