"""RelativeHuman evaluation: PCRD^0.2, per age group and relation, mPCKh and matching F1 (spec §6).

Protocol (our reading of the spec's summary, stated here so results can be compared):

* Matching: ``metrics.greedy_match_2d`` on CrowdPose-14 joints (original-image pixels), lowest mean L2 over
  the GT-visible joints first, a pair accepted if the keypoint-box IoU is >= 0.05.
* Relations: for every ORDERED pair (i, j), i != j, of matched GT people whose ``depth_id`` is known, the GT
  relation is ``eq`` (same layer), ``closer`` (i's layer is nearer, smaller id) or ``farther``. The predicted
  relation from depths (``t_z``) with dz = z_i - z_j is ``eq`` if |dz| < 0.2 m, ``closer`` if dz < -0.2 m and
  ``farther`` if dz > 0.2 m (|dz| == 0.2 exactly matches nothing). A pair is correct when both agree.
  Ordered pairs make ``closer`` and ``farther`` mirror images; the ratio is unchanged for ``eq``.
* Missed people: every missed GT person with a known layer adds 0.3 to the denominator (overall and in its
  age group). PCRD = correct / (pairs + 0.3 * missed). A pair is counted in the age group of its first
  person i; per-relation scores have no miss penalty.
* mPCKh: over matched people's visible joints, correct if the 2D error < 0.143 x the diagonal of the GT
  keypoint box (visible joints).
* Detection: precision = matched / predictions, recall = matched / GT people, F1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.eval.metrics import detection_scores, greedy_match_2d, keypoint_box

AGE_GROUPS = ("adult", "teen", "kid", "baby")
RELATIONS = ("eq", "closer", "farther")
PCRD_THRESH_M = 0.2
MISS_PENALTY = 0.3
MATCH_IOU = 0.05
PCKH_RATIO = 0.143


def depth_relation(dz: np.ndarray, thresh: float = PCRD_THRESH_M) -> np.ndarray:
    """Predicted relation codes from depth differences z_i - z_j (m): 0 eq, -1 closer, +1 farther, 9 none."""
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
    correct: dict = field(default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS, *RELATIONS)})
    pairs: dict = field(default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS, *RELATIONS)})
    penalty: dict = field(default_factory=lambda: {a: 0.0 for a in ("all", *AGE_GROUPS)})
    pck_hits: int = 0
    pck_total: int = 0
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
            pred_depth_m: (P,) predicted depth t_z, metres.
            gt_kp2d: (G, 14, 3) GT joints (x, y, visibility > 0).
            gt_depth_id: (G,) ordinal depth layer, smaller = nearer; -1 = unknown.
            gt_age: (G,) 0 adult, 1 teen, 2 kid, 3 baby; -1 = unknown (counted in "all" only).

        Returns:
            (G,) matched prediction index per GT (-1 = missed).
        """
        gt_kp2d = np.asarray(gt_kp2d, np.float64).reshape(len(gt_kp2d), -1, 3)
        visible = gt_kp2d[..., 2] > 0
        match = greedy_match_2d(pred_kp2d, gt_kp2d[..., :2], visible, MATCH_IOU)
        depth_id = np.asarray(gt_depth_id, np.int64)
        ages = [AGE_GROUPS[a] if 0 <= a < len(AGE_GROUPS) else None for a in np.asarray(gt_age, np.int64)]
        self.num_gt += len(gt_kp2d)
        self.num_pred += len(pred_kp2d)
        self.num_matched += int((match >= 0).sum())
        known = depth_id >= 0
        for g in np.flatnonzero((match < 0) & known):
            self._count(self.penalty, MISS_PENALTY, ages[g])
        ok = np.flatnonzero((match >= 0) & known)
        depth = np.asarray(pred_depth_m, np.float64)
        for i in ok:
            for j in ok:
                if i == j:
                    continue
                truth = int(np.sign(depth_id[i] - depth_id[j]))
                guess = int(depth_relation(depth[match[i]] - depth[match[j]], self.thresh_m))
                relation = {0: "eq", -1: "closer", 1: "farther"}[truth]
                hit = float(guess == truth)
                self._count(self.correct, hit, ages[i], relation)
                self._count(self.pairs, 1.0, ages[i], relation)
        for g in np.flatnonzero(match >= 0):
            vis = visible[g]
            diag = np.linalg.norm(np.diff(keypoint_box(gt_kp2d[g, :, :2], vis).reshape(2, 2), axis=0))
            err = np.linalg.norm(np.asarray(pred_kp2d[match[g]], np.float64) - gt_kp2d[g, :, :2], axis=-1)
            self.pck_hits += int((err[vis] < PCKH_RATIO * diag).sum())
            self.pck_total += int(vis.sum())
        return match

    @staticmethod
    def _count(table: dict, value: float, age: str | None, relation: str | None = None) -> None:
        table["all"] += value
        if age is not None:
            table[age] += value
        if relation is not None:
            table[relation] += value

    def result(self) -> dict:
        """PCRD (overall, per age, per relation), mPCKh, precision/recall/F1 and the raw counts."""

        def ratio(num: float, den: float) -> float | None:
            return num / den if den > 0 else None

        out = {
            "PCRD_0.2": ratio(self.correct["all"], self.pairs["all"] + self.penalty["all"]),
            "PCRD_age": {a: ratio(self.correct[a], self.pairs[a] + self.penalty[a]) for a in AGE_GROUPS},
            "PCRD_relation": {r: ratio(self.correct[r], self.pairs[r]) for r in RELATIONS},
            "mPCKh": ratio(self.pck_hits, self.pck_total),
            "num_gt": self.num_gt,
            "num_pred": self.num_pred,
            "num_matched": self.num_matched,
            "num_pairs": self.pairs["all"],
        }
        out.update(detection_scores(self.num_gt, self.num_pred, self.num_matched))
        return out
