"""Fit Anny (global rotation, major bones, age + height phenotypes, translation) to one frame's
keypoints.

Per person the fit minimises, batched over all people of a frame with L-BFGS on the fast keypoint
path (:meth:`AnnyBody.keypoints_fast`), over the keypoints that are *known* (seen in the image with
enough score; :func:`~mahmr_ros.offline.keypoints.fit_targets`):

* 3D term (people with metric landmarks, e.g. BlazePose's world landmarks): model keypoints
  (rotated into the camera frame) vs the landmarks, both taken about the centroid of the known
  keypoints, metres. This is what makes the body metric: its size selects the age/height
  phenotypes. Centring on the known keypoints (not the hips) keeps the term valid when the hips are
  out of the picture.
* 2D term: reprojection error of the placed keypoints, pixels converted to metres at the person's
  depth (``px * z / f``) so both terms share a unit; it pins the translation and sharpens the limbs
  (2D landmarks are more precise than BlazePose's depth). People without 3D landmarks are fitted on
  this term and the priors.
* Priors: bone rotations near a relaxed standing pose
  (:data:`~mahmr_ros.offline.anny_body.STANDING_POSE`), so limbs nobody sees (cut off by the image
  border, occluded) stand instead of following a guess; the body's up axis near the floor's up
  (people stand upright: without it a head-and-shoulders view can tilt the unseen hips towards the
  camera); age/height phenotypes near an adult of average height. The 3D landmarks decide between a
  small adult and a child only through proportions, so the prior keeps ambiguous cases adult; the
  floor (:mod:`mahmr_ros.offline.floor`) and DTO take it from there.

The global rotation starts from a Kabsch alignment of the known rigid keypoints (face, shoulders,
hips) when there are 3D landmarks, else from the upright yaw that reprojects best; the limbs from
their 3D segment directions (:meth:`AnnyFitter.initial_limbs`), unseen ones standing; the
translation from the linear solve of :func:`~mahmr_ros.offline.place.solve_translation`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.geometry import (
    axis_angle_to_rotmat,
    project,
    rotation_between,
    rotmat_to_axis_angle,
)
from mahmr_ros.offline.anny_body import FIT_BONES, AnnyBody, standing_aa
from mahmr_ros.offline.place import solve_translation

#: Keypoint indices (anny_body.KEYPOINT_NAMES) of the near-rigid upper body used to initialise the
#: global rotation from 3D landmarks: face, shoulders, hips.
_RIGID = (0, 1, 2, 3, 4, 5, 6, 11, 12)
_SHOULDERS = (5, 6)
_HIPS = (11, 12)
#: Smallest depth a model keypoint may take, metres (a hand's vertices reach ~0.1 m past the
#: wrist).
MIN_KEYPOINT_DEPTH_M = 0.2
#: Up direction of a level camera (OpenCV optical frame: y down).
LEVEL_UP = np.array([0.0, -1.0, 0.0])
#: Candidate body yaws (degrees about the up axis, 0 = facing the camera) tried for people without
#: 3D landmarks.
_YAWS_DEG = np.arange(0.0, 360.0, 30.0)


@dataclass
class FitResult:
    """Fitted Anny parameters for P people (all float64 numpy).

    Attributes:
        R_cam_anny: (P, 3, 3) rotation of Anny's model frame into the camera frame.
        bone_aa: (P, len(FIT_BONES), 3) local axis-angle of :data:`FIT_BONES`, radians.
        age: (P,) Anny age phenotype in [0, 1].
        height_ph: (P,) Anny height phenotype in [0, 1].
        transl: (P, 3) m, camera-frame position of Anny's model origin.
        rms_3d_m: (P,) visibility-weighted RMS of the 3D term, metres (0 without 3D landmarks).
        rms_2d_px: (P,) visibility-weighted RMS reprojection error, pixels.
    """

    R_cam_anny: np.ndarray
    bone_aa: np.ndarray
    age: np.ndarray
    height_ph: np.ndarray
    transl: np.ndarray
    rms_3d_m: np.ndarray
    rms_2d_px: np.ndarray

    def take(self, index: np.ndarray) -> FitResult:
        """The fit of people ``index`` ((N,) ints into the P people), in that order."""
        return FitResult(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


#: (upper bone, lower bone, proximal, middle, distal keypoint) of each limb, KEYPOINT_NAMES
#: indices.
_LIMBS = (
    ("upperarm01.L", "lowerarm01.L", 5, 7, 9),
    ("upperarm01.R", "lowerarm01.R", 6, 8, 10),
    ("upperleg01.L", "lowerleg01.L", 11, 13, 15),
    ("upperleg01.R", "lowerleg01.R", 12, 14, 16),
)


def _kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R minimising sum w ||R src - dst||^2 over centred (N, 3) point sets."""
    src = src - np.average(src, axis=0, weights=w)
    dst = dst - np.average(dst, axis=0, weights=w)
    rot, _ = Rotation.align_vectors(dst, src, weights=w)
    return rot.as_matrix()


def upright_rotation(up_cam: np.ndarray, yaw_rad: float) -> np.ndarray:
    """(3, 3) R_cam_anny of a body standing along ``up_cam``, turned by ``yaw_rad`` from facing the
    camera.

    Anny's model frame is x = body left, y = back, z = up; facing the camera (yaw 0) its back (+y)
    points away from the camera, i.e. along the optical axis projected onto the floor.
    """
    up = np.asarray(up_cam, np.float64) / np.linalg.norm(up_cam)
    away = np.array([0.0, 0.0, 1.0]) - up[2] * up  # optical axis on the floor plane
    away /= np.linalg.norm(away)
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    left = np.cross(
        away, up
    )  # camera +x for a level camera: the facing body's left is the image's right
    back = c * away + s * np.cross(up, away)
    left = c * left + s * np.cross(up, left)
    return np.stack([left, back, up], axis=1)


class AnnyFitter:
    """Batched Anny fit to 2D keypoints and, where given, metric 3D landmarks (see the module
    docstring).

    Args:
        body: the Anny body with its tabulated keypoint path.
        iterations: L-BFGS iterations (each up to ``line_search`` evaluations).
        weight_2d: weight of the 2D term relative to the 3D term (both metres squared).
        weight_pose_prior: weight of ``||bone_aa - standing||^2`` (radians squared).
        weight_phenotype_prior: weight of the squared distance of (age, height) to the prior mean.
        weight_upright: weight of ``||R_cam_anny e_z - up||^2``, the body's up axis off the floor's
            up. Weak next to a whole body's keypoints (a 10 degree tilt moves 18 keypoints by ~0.13
            m^2 in total, and costs this x 0.03), decisive when only the face and shoulders are
            seen.
        age_prior: prior mean of the age phenotype (0.6 = a young adult, about 21 years).
        height_prior: prior mean of the height phenotype (0.5 = average).
        metric_3d: trust the metric scale of the 3D landmarks, so their size picks the phenotypes
            (default). False compares shapes only, leaving age/height to body proportions and the
            prior; on the bundled sample that was worse (adult heights +0.05/+0.20 m vs -0.06/+0.11
            m metric), and neither finds the child: BlazePose's world landmarks have adult
            proportions and scale. Measured on 21 rendered
            people (ages 0.15-0.75): with the 3D term scale-free and the 2D term weighted 10-1000x,
            30 iterations, the age stays at ~0.6 for everyone; a grid search of age on the 2D
            trunk/leg proportions (fitted pose kept) cut the children's height error from 0.55 to
            0.22 m (max 0.43 m) but sized a 1.60 m adult as a 1.34 m child. Neither is used; the
            floor (:mod:`mahmr_ros.offline.floor`) sizes children to a few cm.
    """

    def __init__(
        self,
        body: AnnyBody,
        iterations: int = 10,
        weight_2d: float = 1.0,
        weight_pose_prior: float = 1e-3,
        weight_phenotype_prior: float = 5e-3,
        weight_upright: float = 0.05,
        age_prior: float = 0.6,
        height_prior: float = 0.5,
        metric_3d: bool = True,
    ):
        if iterations < 1:
            raise ValueError(f"[offline] fit iterations must be >= 1, got {iterations}")
        self.body = body
        self.iterations = iterations
        self.weight_2d = weight_2d
        self.weight_pose_prior = weight_pose_prior
        self.weight_phenotype_prior = weight_phenotype_prior
        self.weight_upright = weight_upright
        self.age_prior = age_prior
        self.height_prior = height_prior
        self.metric_3d = metric_3d
        dt = body.dtype
        self.standing_aa = standing_aa()
        zero_aa = torch.zeros(1, len(FIT_BONES), 3, dtype=dt)
        prior = (torch.tensor([age_prior], dtype=dt), torch.tensor([height_prior], dtype=dt))
        with torch.no_grad():
            self._rest_kp = body.keypoints_fast(zero_aa, *prior)[
                0
            ].numpy()  # (K, 3) prior body, zero pose
            stand = torch.as_tensor(self.standing_aa[None], dtype=dt)
            self._standing_kp = body.keypoints_fast(stand, *prior)[
                0
            ].numpy()  # (K, 3) prior body, standing

    def initial_rotation(self, world_cam: np.ndarray, conf: np.ndarray) -> np.ndarray | None:
        """(K, 3) camera-axis landmarks, (K,) conf -> (3, 3) R_cam_anny aligning the known rigid
        keypoints (face, shoulders, hips) of the standing prior body; None with fewer than 3 of
        them known."""
        idx = [k for k in _RIGID if conf[k] > 0 and np.isfinite(world_cam[k]).all()]
        if len(idx) < 3:
            return None
        src, dst = self._standing_kp[idx], world_cam[idx]
        # three face points alone are nearly collinear seen from the front: not enough for a
        # rotation
        spread = np.linalg.svd(src - src.mean(0), compute_uv=False)
        if spread[1] < 0.05:
            return None
        return _kabsch(src, dst, conf[idx])

    def initial_upright(
        self, uv_px: np.ndarray, conf: np.ndarray, K: np.ndarray, up_cam: np.ndarray
    ):
        """(3, 3) R_cam_anny of the upright standing body whose yaw reprojects best onto the known
        keypoints (people without 3D landmarks)."""
        best, best_err = upright_rotation(up_cam, 0.0), np.inf
        if (conf > 0).sum() < 2:
            return best
        for yaw in np.radians(_YAWS_DEG):
            R = upright_rotation(up_cam, yaw)
            pts = self._standing_kp @ R.T
            t = solve_translation(pts, uv_px, K, weights=conf, gauss_newton_steps=2)
            X = pts + t
            uv = project(X, K)
            err = np.nansum(conf * ((uv - uv_px) ** 2).sum(1))
            if err < best_err:
                best, best_err = R, err
        return best

    def initial_limbs(
        self, world_cam: np.ndarray, conf: np.ndarray, R_cam_anny: np.ndarray
    ) -> np.ndarray:
        """(len(FIT_BONES), 3) local axis-angle pointing each limb segment along its 3D landmarks.

        Anny's 'local-ref' deltas are rotations in world-aligned axes, so a child segment's
        rotation from rest is its parent's times its own delta: ``G_child = G_parent D_child``. We
        take each segment's minimal rotation from its rest direction to the observed one (``G``)
        and peel off the parent's; twist and the spine stay at zero. Segments with an unseen end
        keep the standing pose.
        """
        target = world_cam @ R_cam_anny  # (K, 3) landmarks in Anny model axes
        aa = self.standing_aa.copy()
        seen = (conf > 0) & np.isfinite(world_cam).all(1)
        for parent_bone, child_bone, a, b, c in _LIMBS:
            G_parent = axis_angle_to_rotmat(aa[FIT_BONES.index(parent_bone)])
            if seen[a] and seen[b]:
                G_parent = rotation_between(
                    self._rest_kp[b] - self._rest_kp[a], target[b] - target[a]
                )
                aa[FIT_BONES.index(parent_bone)] = rotmat_to_axis_angle(G_parent)
            if seen[b] and seen[c]:
                G_child = rotation_between(
                    self._rest_kp[c] - self._rest_kp[b], target[c] - target[b]
                )
                aa[FIT_BONES.index(child_bone)] = rotmat_to_axis_angle(G_parent.T @ G_child)
        return aa

    def fit(
        self,
        world_cam: np.ndarray,
        uv_px: np.ndarray,
        conf: np.ndarray,
        K: np.ndarray,
        init: FitResult | None = None,
        iterations: int | None = None,
        up_cam: np.ndarray | None = None,
    ) -> FitResult:
        """Fit P people at once.

        Args:
            world_cam: (P, K, 3) metric landmarks in camera axes, metres, any origin (NaN rows =
                missing: a person with no finite row is fitted on 2D keypoints and the priors
                alone).
            uv_px: (P, K, 2) 2D keypoints in the original image, pixels (NaN = missing).
            conf: (P, K) keypoint confidences in [0, 1] (0 = unknown, ignored).
            K: (3, 3) intrinsics of the original image, pixels.
            init: the same P people's fit from the previous video frame (warm start: rotation,
                bones and phenotypes start there instead of the Kabsch/limb initialisation), or
                None.
            iterations: L-BFGS iterations for this call; default ``self.iterations``.
            up_cam: (3,) unit 'up' of the floor in the camera frame for the upright prior; default
                a level camera's (0, -1, 0).

        Returns:
            The fitted parameters (:class:`FitResult`).
        """
        world_cam = np.asarray(world_cam, np.float64)
        uv_px = np.asarray(uv_px, np.float64)
        conf = np.where(np.isfinite(uv_px).all(-1), np.nan_to_num(conf), 0.0)
        w3_np = np.where(np.isfinite(world_cam).all(-1), conf, 0.0)  # 3D term weights
        world_cam = np.nan_to_num(world_cam)
        uv_px = np.nan_to_num(uv_px)
        up = (
            LEVEL_UP if up_cam is None else np.asarray(up_cam, np.float64) / np.linalg.norm(up_cam)
        )
        P = world_cam.shape[0]
        dt = self.body.dtype
        if init is not None and len(init.age) != P:
            raise ValueError(f"[offline] fit init has {len(init.age)} people, the landmarks {P}")
        if init is None:
            R0 = []
            for p in range(P):
                R = self.initial_rotation(world_cam[p], w3_np[p])
                R0.append(R if R is not None else self.initial_upright(uv_px[p], conf[p], K, up))
            R0 = np.stack(R0)
            aa0 = np.stack([self.initial_limbs(world_cam[p], w3_np[p], R0[p]) for p in range(P)])
            ph0 = np.tile([self.age_prior, self.height_prior], (P, 1))
        else:
            R0, aa0 = init.R_cam_anny, init.bone_aa
            ph0 = np.stack([init.age, init.height_ph], 1)
        with torch.no_grad():
            kp0 = self.body.keypoints_fast(
                torch.as_tensor(aa0, dtype=dt), *torch.as_tensor(ph0, dtype=dt).unbind(1)
            ).numpy()
        t0 = np.stack(
            [solve_translation(kp0[p] @ R0[p].T, uv_px[p], K, weights=conf[p]) for p in range(P)]
        )
        R0_t = torch.as_tensor(R0, dtype=dt)
        rot_delta = torch.zeros(P, 3, dtype=dt, requires_grad=True)
        bone_aa = torch.as_tensor(aa0, dtype=dt).clone().requires_grad_(True)
        # phenotypes through a logit so they stay in (0, 1) without clamping the gradient away
        ph_logit = torch.logit(
            torch.as_tensor(ph0, dtype=dt).clamp(1e-3, 1 - 1e-3)
        ).requires_grad_(True)
        transl = torch.as_tensor(t0, dtype=dt).clone().requires_grad_(True)
        target3 = torch.as_tensor(world_cam, dtype=dt)
        target2 = torch.as_tensor(uv_px, dtype=dt)
        w = torch.as_tensor(conf, dtype=dt)
        w3 = torch.as_tensor(w3_np, dtype=dt)
        w3_sum = w3.sum(1, keepdim=True).clamp(min=1e-9)
        # the known landmarks' centroid: the 3D term compares shapes about it (valid without the
        # hips)
        target3_c = target3 - (w3[..., None] * target3).sum(1, keepdim=True) / w3_sum[..., None]
        Kt = torch.as_tensor(K, dtype=dt)
        f = 0.5 * (Kt[0, 0] + Kt[1, 1])
        depth = torch.as_tensor(t0[:, 2], dtype=dt).clamp(min=0.3)  # fixed metres-per-pixel scale
        prior = torch.tensor([self.age_prior, self.height_prior], dtype=dt)
        pose_prior = torch.as_tensor(self.standing_aa, dtype=dt)
        up_t = torch.as_tensor(up, dtype=dt)

        def model_points():
            ph = torch.sigmoid(ph_logit)
            kp = self.body.keypoints_fast(bone_aa, ph[:, 0], ph[:, 1])  # (P, K, 3) model frame
            R = axis_angle_to_rotmat(rot_delta) @ R0_t  # (P, 3, 3)
            kp_cam = torch.einsum("pij,pkj->pki", R, kp)
            return kp_cam, ph, R

        def residuals():
            kp_cam, ph, R = model_points()
            residuals.kp_cam = kp_cam
            a = kp_cam - (w3[..., None] * kp_cam).sum(1, keepdim=True) / w3_sum[..., None]
            if not self.metric_3d:
                # scale-free shape term: the model scaled onto the landmarks (proportions only)
                s = (w3[..., None] * a * target3_c).sum((1, 2)) / (w3[..., None] * a * a).sum(
                    (1, 2)
                ).clamp(min=1e-9)
                a = a * s[:, None, None]
            r3 = (a - target3_c).square().sum(-1)  # (P, K) m^2
            X = kp_cam + transl[:, None]
            uv = project(X, Kt, min_depth_m=1e-2)
            r2 = (uv - target2).square().sum(-1)  # (P, K) px^2
            return r3, r2, ph, R

        def loss_fn():
            r3, r2, ph, R = residuals()
            kp_cam = residuals.kp_cam
            m2 = (depth / f).square()[:, None]  # px^2 -> m^2 at the person's depth
            data = (w3 * r3).sum() + self.weight_2d * (w * m2 * r2).sum()
            priors = self.weight_pose_prior * (bone_aa - pose_prior).square().sum()
            priors = priors + self.weight_phenotype_prior * (ph - prior).square().sum()
            # upright: the pelvis' up axis and the trunk (mid-hip -> mid-shoulder), which the spine
            # bones can bend freely when the hips are not seen
            trunk = kp_cam[:, list(_SHOULDERS)].mean(1) - kp_cam[:, list(_HIPS)].mean(1)
            trunk = trunk / trunk.norm(dim=-1, keepdim=True).clamp(min=1e-6)
            upright = (R[:, :, 2] - up_t).square().sum() + (trunk - up_t).square().sum()
            # the camera cannot be inside anyone: every keypoint, seen or not, stays in front of it
            behind = (MIN_KEYPOINT_DEPTH_M - (kp_cam[..., 2] + transl[:, None, 2])).clamp(min=0.0)
            return data + priors + self.weight_upright * upright + behind.square().sum()

        opt = torch.optim.LBFGS(
            [rot_delta, bone_aa, ph_logit, transl],
            lr=1.0,
            max_iter=self.iterations if iterations is None else int(iterations),
            history_size=10,
            line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            r3, r2, ph, R = residuals()
            rms_3d = np.sqrt(((w3 * r3).sum(1) / w3_sum[:, 0]).numpy())
            rms_2d = np.sqrt(((w * r2).sum(1) / w.sum(1).clamp(min=1e-9)).numpy())
        return FitResult(
            R_cam_anny=R.numpy().copy(),
            bone_aa=bone_aa.detach().numpy().copy(),
            age=ph[:, 0].numpy().copy(),
            height_ph=ph[:, 1].numpy().copy(),
            transl=transl.detach().numpy().copy(),
            rms_3d_m=rms_3d,
            rms_2d_px=rms_2d,
        )
