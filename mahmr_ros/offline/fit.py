"""Fit Anny (global rotation, major bones, age + height phenotypes, translation) to one frame's landmarks.

Per person the fit minimises, batched over all people of a frame with L-BFGS on the fast keypoint path
(:meth:`AnnyBody.keypoints_fast`):

* 3D term: hip-centred model keypoints (rotated into the camera frame) vs BlazePose's hip-centred metric world
  landmarks, metres. This is what makes the body metric: its size selects the age/height phenotypes.
* 2D term: reprojection error of the placed keypoints, pixels converted to metres at the person's depth
  (``px * z / f``) so both terms share a unit; it pins the translation and sharpens the limbs (2D landmarks
  are more precise than BlazePose's depth).
* Priors: small local bone rotations, and age/height phenotypes near an adult of average height. The 3D
  landmarks decide between a small adult and a child only through proportions, so the prior keeps ambiguous
  cases adult; DTO's height prior (children allowed) takes it from there.

The global rotation starts from a Kabsch alignment of the torso (shoulders + hips), the limbs from their 3D
segment directions (:meth:`AnnyFitter.initial_limbs`), the translation from the
linear solve of :func:`~mahmr_ros.offline.place.solve_translation`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import roma
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.offline.anny_body import FIT_BONES, AnnyBody
from mahmr_ros.offline.place import solve_translation

#: Keypoint indices (anny_body.KEYPOINT_NAMES) of the torso used to initialise the global rotation.
_TORSO = (5, 6, 11, 12)
_HIPS = (11, 12)


@dataclass
class FitResult:
    """Fitted Anny parameters for P people (all float64 numpy).

    Attributes:
        R_cam_anny: (P, 3, 3) rotation of Anny's model frame into the camera frame.
        bone_aa: (P, len(FIT_BONES), 3) local axis-angle of :data:`FIT_BONES`, radians.
        age: (P,) Anny age phenotype in [0, 1].
        height_ph: (P,) Anny height phenotype in [0, 1].
        transl: (P, 3) m, camera-frame position of Anny's model origin.
        rms_3d_m: (P,) visibility-weighted RMS of the 3D term, metres.
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


#: (upper bone, lower bone, proximal, middle, distal keypoint) of each limb, KEYPOINT_NAMES indices.
_LIMBS = (
    ("upperarm01.L", "lowerarm01.L", 5, 7, 9),
    ("upperarm01.R", "lowerarm01.R", 6, 8, 10),
    ("upperleg01.L", "lowerleg01.L", 11, 13, 15),
    ("upperleg01.R", "lowerleg01.R", 12, 14, 16),
)


def _rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, 3) minimal rotation taking direction ``u`` onto direction ``v``."""
    rot, _ = Rotation.align_vectors(v[None], u[None])
    return rot.as_matrix()


def _kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R minimising sum w ||R src - dst||^2 over centred (N, 3) point sets."""
    src = src - np.average(src, axis=0, weights=w)
    dst = dst - np.average(dst, axis=0, weights=w)
    rot, _ = Rotation.align_vectors(dst, src, weights=w)
    return rot.as_matrix()


class AnnyFitter:
    """Batched Anny fit to BlazePose landmarks (see the module docstring for the objective).

    Args:
        body: the Anny body with its tabulated keypoint path.
        iterations: L-BFGS iterations (each up to ``line_search`` evaluations).
        weight_2d: weight of the 2D term relative to the 3D term (both metres squared).
        weight_pose_prior: weight of ``||bone_aa||^2`` (radians squared).
        weight_phenotype_prior: weight of the squared distance of (age, height) to the prior mean.
        age_prior: prior mean of the age phenotype (0.6 = a young adult, about 21 years).
        height_prior: prior mean of the height phenotype (0.5 = average).
        metric_3d: trust the metric scale of the 3D landmarks, so their size picks the phenotypes (default).
            False compares shapes only, leaving age/height to body proportions and the prior; on the bundled
            sample that was worse (adult heights +0.05/+0.20 m vs -0.06/+0.11 m metric), and neither finds
            the child: BlazePose's world landmarks have adult proportions and scale. Measured on 21 rendered
            people (ages 0.15-0.75): with the 3D term scale-free and the 2D term weighted 10-1000x, 30
            iterations, the age stays at ~0.6 for everyone; a grid search of age on the 2D trunk/leg
            proportions (fitted pose kept) cut the children's height error from 0.55 to 0.22 m (max 0.43 m)
            but sized a 1.60 m adult as a 1.34 m child. Neither is used; a known floor
            (:mod:`mahmr_ros.offline.floor`) sizes children to a few cm.
    """

    def __init__(
        self,
        body: AnnyBody,
        iterations: int = 10,
        weight_2d: float = 1.0,
        weight_pose_prior: float = 1e-3,
        weight_phenotype_prior: float = 5e-3,
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
        self.age_prior = age_prior
        self.height_prior = height_prior
        self.metric_3d = metric_3d
        dt = body.dtype
        zero_aa = torch.zeros(1, len(FIT_BONES), 3, dtype=dt)
        prior = (torch.tensor([age_prior], dtype=dt), torch.tensor([height_prior], dtype=dt))
        with torch.no_grad():
            self._rest_kp = body.keypoints_fast(zero_aa, *prior)[0].numpy()  # (K, 3) prior body, zero pose

    def initial_rotation(self, world_cam: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """(K, 3) hip-centred camera-axis landmarks, (K,) conf -> (3, 3) R_cam_anny aligning the torso."""
        idx = list(_TORSO)
        w = np.clip(conf[idx], 0.05, None)
        return _kabsch(self._rest_kp[idx], world_cam[idx], w)

    def initial_limbs(self, world_cam: np.ndarray, conf: np.ndarray, R_cam_anny: np.ndarray) -> np.ndarray:
        """(len(FIT_BONES), 3) local axis-angle pointing each limb segment along its 3D landmarks.

        Anny's 'local-ref' deltas are rotations in world-aligned axes, so a child segment's rotation from
        rest is its parent's times its own delta: ``G_child = G_parent D_child``. We take each segment's
        minimal rotation from its rest direction to the observed one (``G``) and peel off the parent's;
        twist and the spine stay at zero. Segments with an unseen end keep their rest direction.
        """
        target = world_cam @ R_cam_anny  # (K, 3) landmarks in Anny model axes
        aa = np.zeros((len(FIT_BONES), 3))
        for parent_bone, child_bone, a, b, c in _LIMBS:
            G_parent = np.eye(3)
            if conf[a] > 0 and conf[b] > 0:
                G_parent = _rotation_between(self._rest_kp[b] - self._rest_kp[a], target[b] - target[a])
                aa[FIT_BONES.index(parent_bone)] = Rotation.from_matrix(G_parent).as_rotvec()
            if conf[b] > 0 and conf[c] > 0:
                G_child = _rotation_between(self._rest_kp[c] - self._rest_kp[b], target[c] - target[b])
                aa[FIT_BONES.index(child_bone)] = Rotation.from_matrix(G_parent.T @ G_child).as_rotvec()
        return aa

    def fit(
        self,
        world_cam: np.ndarray,
        uv_px: np.ndarray,
        conf: np.ndarray,
        K: np.ndarray,
        init: FitResult | None = None,
        iterations: int | None = None,
    ) -> FitResult:
        """Fit P people at once.

        Args:
            world_cam: (P, K, 3) hip-centred metric landmarks in camera axes (NaN rows = missing), metres.
            uv_px: (P, K, 2) 2D landmarks in the original image, pixels (NaN = missing).
            conf: (P, K) landmark confidences in [0, 1] (0 = ignore).
            K: (3, 3) intrinsics of the original image, pixels.
            init: the same P people's fit from the previous video frame (warm start: rotation, bones and
                phenotypes start there instead of the Kabsch/limb initialisation), or None.
            iterations: L-BFGS iterations for this call; default ``self.iterations``.

        Returns:
            The fitted parameters (:class:`FitResult`).
        """
        world_cam = np.asarray(world_cam, np.float64)
        uv_px = np.asarray(uv_px, np.float64)
        conf = np.where(np.isfinite(world_cam).all(-1) & np.isfinite(uv_px).all(-1), conf, 0.0)
        world_cam = np.nan_to_num(world_cam)
        uv_px = np.nan_to_num(uv_px)
        P = world_cam.shape[0]
        dt = self.body.dtype
        if init is not None and len(init.age) != P:
            raise ValueError(f"[offline] fit init has {len(init.age)} people, the landmarks {P}")
        if init is None:
            R0 = np.stack([self.initial_rotation(world_cam[p], conf[p]) for p in range(P)])
            aa0 = np.stack([self.initial_limbs(world_cam[p], conf[p], R0[p]) for p in range(P)])
            ph0 = np.tile([self.age_prior, self.height_prior], (P, 1))
        else:
            R0, aa0 = init.R_cam_anny, init.bone_aa
            ph0 = np.stack([init.age, init.height_ph], 1)
        with torch.no_grad():
            kp0 = self.body.keypoints_fast(
                torch.as_tensor(aa0, dtype=dt), *torch.as_tensor(ph0, dtype=dt).unbind(1)
            ).numpy()
        t0 = np.stack([solve_translation(kp0[p] @ R0[p].T, uv_px[p], K, weights=conf[p]) for p in range(P)])
        R0_t = torch.as_tensor(R0, dtype=dt)
        rot_delta = torch.zeros(P, 3, dtype=dt, requires_grad=True)
        bone_aa = torch.as_tensor(aa0, dtype=dt).clone().requires_grad_(True)
        # phenotypes through a logit so they stay in (0, 1) without clamping the gradient away
        ph_logit = torch.logit(torch.as_tensor(ph0, dtype=dt).clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
        transl = torch.as_tensor(t0, dtype=dt).clone().requires_grad_(True)
        target3 = torch.as_tensor(world_cam, dtype=dt)
        target2 = torch.as_tensor(uv_px, dtype=dt)
        w = torch.as_tensor(conf, dtype=dt)
        Kt = torch.as_tensor(K, dtype=dt)
        f = 0.5 * (Kt[0, 0] + Kt[1, 1])
        depth = torch.as_tensor(t0[:, 2], dtype=dt).clamp(min=0.3)  # fixed metres-per-pixel scale
        prior = torch.tensor([self.age_prior, self.height_prior], dtype=dt)

        def model_points():
            ph = torch.sigmoid(ph_logit)
            kp = self.body.keypoints_fast(bone_aa, ph[:, 0], ph[:, 1])  # (P, K, 3) model frame
            R = roma.rotvec_to_rotmat(rot_delta) @ R0_t  # (P, 3, 3)
            kp_cam = torch.einsum("pij,pkj->pki", R, kp)
            return kp_cam, ph

        def residuals():
            kp_cam, ph = model_points()
            a = kp_cam - kp_cam[:, list(_HIPS)].mean(1, keepdim=True)
            if not self.metric_3d:
                # scale-free shape term: the model scaled onto the landmarks (proportions only)
                s = (w[..., None] * a * target3).sum((1, 2)) / (w[..., None] * a * a).sum((1, 2)).clamp(
                    min=1e-9
                )
                a = a * s[:, None, None]
            r3 = (a - target3).square().sum(-1)  # (P, K) m^2
            X = kp_cam + transl[:, None]
            z = X[..., 2].clamp(min=1e-2)
            uv = torch.stack([Kt[0, 0] * X[..., 0] / z + Kt[0, 2], Kt[1, 1] * X[..., 1] / z + Kt[1, 2]], -1)
            r2 = (uv - target2).square().sum(-1)  # (P, K) px^2
            return r3, r2, ph

        def loss_fn():
            r3, r2, ph = residuals()
            m2 = (depth / f).square()[:, None]  # px^2 -> m^2 at the person's depth
            data = (w * (r3 + self.weight_2d * m2 * r2)).sum()
            priors = self.weight_pose_prior * bone_aa.square().sum()
            priors = priors + self.weight_phenotype_prior * (ph - prior).square().sum()
            return data + priors

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
            r3, r2, ph = residuals()
            wsum = w.sum(1).clamp(min=1e-9)
            R = (roma.rotvec_to_rotmat(rot_delta) @ R0_t).numpy()
        return FitResult(
            R_cam_anny=R,
            bone_aa=bone_aa.detach().numpy().copy(),
            age=ph[:, 0].numpy().copy(),
            height_ph=ph[:, 1].numpy().copy(),
            transl=transl.detach().numpy().copy(),
            rms_3d_m=np.sqrt(((w * r3).sum(1) / wsum).numpy()),
            rms_2d_px=np.sqrt(((w * r2).sum(1) / wsum).numpy()),
        )
