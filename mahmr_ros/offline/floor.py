"""Body size and distance from feet on a known floor: single-view metrology for children and short
adults.

One image cannot tell a child near the camera from an adult farther away: both project to the same
pixels, and BlazePose's metric world landmarks are adult-sized whoever it sees (a 1.16 m child is
fitted as a ~1.7 m adult ~50 % too far). A known floor plane removes the ambiguity. A standing
person's soles touch the floor, so the ray through the feet pixels meets the floor at the person's
true distance, and the body that reprojects onto the landmarks at that distance has the person's
true size.

Assumption (documented, opt-in): the camera's height above a flat floor and its pitch are known,
with no roll, e.g. from the robot's URDF / TF (``base_link -> camera``), and the person stands on
that floor (at least one heel or ankle landmark visible). Nothing in the image is assumed about the
person's size.

Method, per person, on the already fitted pose (rotation and bones from :class:`~.fit.AnnyFitter`):

* sizes are searched along a one-dimensional growth path through Anny's phenotypes: ``age`` from 0
  (about one year) to 0.62 (young adult, 1.78 m) at average ``height`` phenotype, then the
  ``height`` phenotype from 0.5 to 1 at adult age (up to 2.3 m). Height alone is measured, not age:
  a 1.55 m person gets the proportions of a ~15 year old (between 1.40 and 1.78 m the path cannot
  tell a teenager from a short adult);
* at each path node the translation that reprojects the model's keypoints onto the landmarks is the
  linear least-squares solve of :func:`~.place.solve_translation` (one pseudo-inverse per person
  serves every node);
* the node's floor gap is the height above the floor of the lower foot's soles (heel keypoints,
  else ankles, minus their rest height above the soles); it falls as the body grows and moves away
  along the rays, and the size is where it crosses zero (linear interpolation between nodes).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mahmr_ros.geometry import unproject
from mahmr_ros.offline.anny_body import AnnyBody
from mahmr_ros.offline.place import solve_translation

#: Anny keypoint indices (anny_body.KEYPOINT_NAMES) that can stand on the floor, in order of
#: preference.
HEELS = (21, 22)
ANKLES = (15, 16)


def floor_up(camera_pitch_deg: float = 0.0) -> np.ndarray:
    """(3,) unit 'up' direction of a level floor in the camera frame (OpenCV optical: y down, z
    forward).

    Args:
        camera_pitch_deg: downward tilt of the optical axis below the horizon, degrees (no roll).
    """
    th = math.radians(camera_pitch_deg)
    return np.array([0.0, -math.cos(th), -math.sin(th)])


class FloorSizer:
    """Sizes fitted Anny bodies so their feet stand on a known floor (see the module docstring).

    Args:
        body: the Anny body (fast keypoints, tabulated heights and keypoint lifts).
        camera_height_m: height of the camera's optical centre above the floor, metres (> 0).
        camera_pitch_deg: downward tilt of the optical axis, degrees, in (-90, 90); 0 = level.
        path_nodes: nodes of the growth path (accuracy of the size vs cost; 48 nodes are ~3 cm
            apart).
        max_height_m: a floor size above this is refused (the person keeps the landmark size):
            nobody is that tall, so the feet are not on this floor (a chair, stairs, a lap) or the
            camera height is off.
    """

    def __init__(
        self,
        body: AnnyBody,
        camera_height_m: float,
        camera_pitch_deg: float = 0.0,
        path_nodes: int = 48,
        max_height_m: float = 2.1,
    ):
        if path_nodes < 4:
            raise ValueError(f"[offline] path_nodes must be >= 4, got {path_nodes}")
        self.body = body
        self.max_height_m = float(max_height_m)
        self.set_floor(camera_height_m, camera_pitch_deg)
        self.last_path_pos = np.zeros(
            0
        )  # (P,) path positions of the last size() call, NaN = unsized
        n_grow = (2 * path_nodes) // 3
        adult_age = 0.62
        self.path_age = np.concatenate(
            [np.linspace(0.0, adult_age, n_grow), np.full(path_nodes - n_grow, adult_age)]
        )
        self.path_height_ph = np.concatenate(
            [np.full(n_grow, 0.5), np.linspace(0.5, 1.0, path_nodes - n_grow + 1)[1:]]
        )
        self.path_height_m = body.height_m(self.path_age, self.path_height_ph)
        self._lift = body.keypoint_lift_m(self.path_age, self.path_height_ph)  # (N, K)

    def set_floor(self, camera_height_m: float, camera_pitch_deg: float = 0.0) -> None:
        """Move the floor (e.g. to a new estimate from :mod:`~mahmr_ros.offline.crowd_floor`); the
        growth path's tables are kept."""
        if not math.isfinite(camera_height_m) or camera_height_m <= 0:
            raise ValueError(
                f"[offline] camera_height_m must be > 0 metres, got {camera_height_m}"
            )
        if not -90.0 < camera_pitch_deg < 90.0:
            raise ValueError(
                f"[offline] camera_pitch_deg must be in (-90, 90) degrees, got {camera_pitch_deg}"
            )
        self.camera_height_m = float(camera_height_m)
        self.camera_pitch_deg = float(camera_pitch_deg)
        self.up = floor_up(camera_pitch_deg)

    def phenotypes_at(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P,) growth-path positions (node + fraction, as :attr:`last_path_pos`) -> (age,
        height_ph)."""
        pos = np.clip(np.asarray(pos, np.float64), 0, len(self.path_age) - 1)
        nodes = np.arange(len(self.path_age))
        return np.interp(pos, nodes, self.path_age), np.interp(pos, nodes, self.path_height_ph)

    def size(
        self,
        R_cam_anny: np.ndarray,
        bone_aa: np.ndarray,
        uv_px: np.ndarray,
        conf: np.ndarray,
        K: np.ndarray,
        image_wh: tuple[int, int] | None = None,
        near: np.ndarray | None = None,
        window: int = 4,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Phenotypes that put each person's feet on the floor.

        Args:
            R_cam_anny: (P, 3, 3) fitted body rotations into the camera frame.
            bone_aa: (P, len(FIT_BONES), 3) fitted local bone rotations, radians.
            uv_px: (P, K, 2) landmarks, pixels (NaN = missing).
            conf: (P, K) landmark weights (0 = ignore).
            K: (3, 3) intrinsics, pixels.
            image_wh: (width, height) of the image, pixels: heel and ankle landmarks outside it are
                not used (BlazePose guesses feet cut off by the image border; a guess must not set
                the size).
            near: (P,) path positions of the same people in the last video frame (NaN = none; see
                :attr:`last_path_pos`): only ``window`` nodes either side are tried first (~5x
                cheaper), the whole path where the size is not there.
            window: path nodes searched either side of ``near``.

        Returns:
            age: (P,) and height_ph: (P,) Anny phenotypes; ok: (P,) bool, False where the floor
            could not size the person (no visible heel or ankle, fewer than 3 landmarks, no size on
            the path puts the feet on the floor, e.g. feet above the horizon, or the size is over
            ``max_height_m``); those entries are NaN. :attr:`last_path_pos` holds each person's
            (P,) path position (NaN if unsized).
        """
        P = len(R_cam_anny)
        N = len(self.path_age)
        age = np.full(P, np.nan)
        height_ph = np.full(P, np.nan)
        ok = np.zeros(P, bool)
        self.last_path_pos = np.full(P, np.nan)
        if P == 0:
            return age, height_ph, ok
        uv_px = np.asarray(uv_px, np.float64)
        conf = np.where(np.isfinite(uv_px).all(-1), np.clip(np.nan_to_num(conf), 0, None), 0.0)
        on_image = np.ones(conf.shape, bool)
        if image_wh is not None:
            W, H = image_wh
            u, v = np.nan_to_num(uv_px[..., 0], nan=-1.0), np.nan_to_num(uv_px[..., 1], nan=-1.0)
            on_image = (u >= 0) & (u <= W - 1) & (v >= 0) & (v <= H - 1)
        todo = {}  # person -> path nodes to try
        for p in range(P):
            seen = (conf[p] > 0) & on_image[p]
            feet = [j for j in HEELS if seen[j]] or [j for j in ANKLES if seen[j]]
            if feet and (conf[p] > 0).sum() >= 3:
                c = np.nan if near is None else near[p]
                full = np.arange(N)
                todo[p] = (
                    feet,
                    full
                    if not np.isfinite(c)
                    else full[max(0, int(c) - window) : int(c) + window + 2],
                )
        for _ in range(2):  # windowed first; people not found there get the whole path
            if not todo:
                break
            found = self._size_on_nodes(todo, R_cam_anny, bone_aa, uv_px, conf, K)
            retry = {}
            for p, (feet, nodes) in todo.items():
                pos = found.get(p)
                if pos is None:
                    if len(nodes) < N:
                        retry[p] = (feet, np.arange(N))
                    continue
                n, f = int(pos), pos - int(pos)
                n1 = min(n + 1, N - 1)
                if (1 - f) * self.path_height_m[n] + f * self.path_height_m[
                    n1
                ] > self.max_height_m:
                    continue
                age[p] = (1 - f) * self.path_age[n] + f * self.path_age[n1]
                height_ph[p] = (1 - f) * self.path_height_ph[n] + f * self.path_height_ph[n1]
                ok[p] = True
                self.last_path_pos[p] = pos
            todo = retry
        return age, height_ph, ok

    def _size_on_nodes(self, todo: dict, R_cam_anny, bone_aa, uv_px, conf, K) -> dict[int, float]:
        """Path position (node index + fraction) where each person's soles cross the floor, among
        their nodes (``todo``: person -> (feet keypoints, (n,) path nodes)); people without a
        crossing are left out.
        """
        people = list(todo)
        nodes = [todo[p][1] for p in people]
        owner = np.concatenate([np.full(len(n), p) for p, n in zip(people, nodes)])
        flat = np.concatenate(nodes)
        dt = self.body.dtype
        with torch.no_grad():
            kp_all = self.body.keypoints_fast(
                torch.as_tensor(bone_aa[owner], dtype=dt),
                torch.as_tensor(self.path_age[flat], dtype=dt),
                torch.as_tensor(self.path_height_ph[flat], dtype=dt),
            ).numpy()
        kp_all = np.einsum("nij,nkj->nki", R_cam_anny[owner], kp_all)  # camera axes
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        out = {}
        start = 0
        for p, idx in zip(people, nodes):
            feet = todo[p][0]
            kp = kp_all[start : start + len(idx)]  # (n, K, 3)
            start += len(idx)
            keep = conf[p] > 0
            du, dv = uv_px[p, keep, 0] - cx, uv_px[p, keep, 1] - cy
            zeros = np.zeros_like(du)
            # fx (X + tx) - du (Z + tz) = 0 and fy (Y + ty) - dv (Z + tz) = 0
            # (place.solve_translation)
            A = np.concatenate(
                [
                    np.stack([np.full_like(du, fx), zeros, -du], 1),
                    np.stack([zeros, np.full_like(dv, fy), -dv], 1),
                ]
            )
            sw = np.sqrt(np.tile(conf[p, keep], 2))
            pinv = np.linalg.pinv(A * sw[:, None])  # (3, 2M): the same for every path node
            X = kp[:, keep]  # (n, M, 3)
            b = np.concatenate(
                [du * X[..., 2] - fx * X[..., 0], dv * X[..., 2] - fy * X[..., 1]], 1
            )
            t = (b * sw) @ pinv.T  # (n, 3)
            soles = (kp[:, feet] + t[:, None]) @ self.up - self._lift[idx][
                :, feet
            ]  # (n, F) above camera
            gap = (
                soles.min(1) + self.camera_height_m
            )  # (n,) lower foot's soles above the floor, metres
            valid = t[:, 2] + X[..., 2].min(1) > 0.1  # the body must stay in front of the camera
            cross = np.nonzero(valid[:-1] & valid[1:] & (gap[:-1] >= 0) & (gap[1:] < 0))[0]
            if len(cross):
                i = cross[0]
                out[p] = float(idx[i]) + gap[i] / (gap[i] - gap[i + 1])
        return out


def fitted_feet(
    body: AnnyBody,
    R_cam_anny: np.ndarray,
    bone_aa: np.ndarray,
    age: np.ndarray,
    height_ph: np.ndarray,
    uv_px: np.ndarray,
    conf: np.ndarray,
    K: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each fitted person's seen feet, as the crowd floor estimate (:mod:`~.crowd_floor`) wants
    them.

    The fitted body is placed again where it reprojects best onto the known keypoints
    (:func:`~.place.solve_translation`): its size and depth must agree (the floor estimate relies
    on the body being the true one scaled about the camera centre), which a few warm-started L-BFGS
    iterations that also moved the phenotypes do not guarantee. Per foot, the heel keypoint if
    seen, else the ankle:
    its observed pixel's ray at that placed body's depth of the keypoint (the pixel says where the
    foot is, the body how far), and its rest height above the soles.

    Args:
        body: the Anny body.
        R_cam_anny, bone_aa, age, height_ph: the fit of P people (:class:`~.fit.FitResult` fields).
        uv_px: (P, K, 2) keypoints, pixels (NaN = unknown).
        conf: (P, K) keypoint weights (0 = unknown).
        K: (3, 3) intrinsics, pixels.

    Returns:
        feet_cam: (P, 2, 3) foot points (left, right), camera frame, metres, NaN where the foot is
            unseen.
        lift_m: (P, 2) their rest height above the soles, metres.
        height_m: (P,) the fitted bodies' T-pose heights, metres.
        seen: (P,) bool, at least one foot seen.
    """
    P = len(R_cam_anny)
    feet = np.full((P, 2, 3), np.nan)
    lift_out = np.zeros((P, 2))
    if P == 0:
        return feet, lift_out, np.zeros(0), np.zeros(0, bool)
    dt = body.dtype
    with torch.no_grad():
        kp = body.keypoints_fast(
            torch.as_tensor(bone_aa, dtype=dt),
            torch.as_tensor(age, dtype=dt),
            torch.as_tensor(height_ph, dtype=dt),
        ).numpy()
    kp_rot = np.einsum("pij,pkj->pki", R_cam_anny, kp)  # (P, K, 3) camera axes, model origin at 0
    lift = body.keypoint_lift_m(age, height_ph)  # (P, K)
    conf = np.where(np.isfinite(uv_px).all(-1), np.nan_to_num(conf), 0.0)
    rows = np.arange(P)
    j = np.stack(
        [np.where(conf[:, h] > 0, h, a) for h, a in zip(HEELS, ANKLES)], 1
    )  # (P, 2) per foot
    has = conf[rows[:, None], j] > 0  # (P, 2)
    for p in np.flatnonzero(has.any(1) & ((conf > 0).sum(1) >= 2)):
        t = solve_translation(kp_rot[p], uv_px[p], K, weights=conf[p])
        for side in np.flatnonzero(has[p]):
            k = j[p, side]
            ray = unproject(uv_px[p, k], K)  # z = 1
            feet[p, side] = ray * (kp_rot[p, k, 2] + t[2])
    lift_out[:] = lift[rows[:, None], j]
    return feet, lift_out, body.height_m(age, height_ph), np.isfinite(feet).all(-1).any(-1)
