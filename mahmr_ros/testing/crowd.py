"""Synthetic crowds with known metric ground truth, for DTO tests, benchmarks and other issues.

A scene is N SYNTHETIC SMPL-format bodies (``mahmr_ros.body.synthetic``; adults, teens and kids,
heights drawn from the class priors of spec dto §3.4) standing on a floor in front of a pinhole
camera with known K, at known metric positions (1-15 m), drawn so that torsos overlap by less than
half in the image. The scene is rendered once with the package's z-buffer
(``mahmr_ros.render.rasterize_meshes``): instance masks (pixel ownership) and a metric depth map
(background = a wall at ``wall_m``). "Network-like" estimates are the true bodies scaled about the
camera centre by a per-person factor e (|e - 1| in [5 %, 30 %], random sign): exactly the
depth/scale ambiguity of monocular HMR, so their 2D projection is perfect and only the metric depth
and height are wrong.

Everything is deterministic given the seed. Bodies are in a zero pose (T-pose) with a random yaw:
DTO only scales along the ray, so articulation does not matter for what is tested here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mahmr_ros.body.synthetic import synthetic_smpl_arrays
from mahmr_ros.dto.priors import HEIGHT_PRIORS_M
from mahmr_ros.dto.shape import ShapeModel
from mahmr_ros.geometry import project
from mahmr_ros.render import rasterize_meshes
from mahmr_ros.types import HumanEstimate

# Canonical SMPL frame (y up, z out of the body front) -> camera frame (y down, z forward) for a
# person facing the camera: a half turn about x.
_CANON_TO_CAM = np.diag([1.0, -1.0, -1.0])
# Share of each class when a scene is drawn (adults female/male/neutral, teens, kids).
_CLASS_WEIGHTS = {1: 0.12, 2: 0.13, 3: 0.25, 4: 0.25, 5: 0.25}


@lru_cache(maxsize=4)
def synthetic_shape_model(num_vertices: int = 6890, seed: int = 0) -> ShapeModel:
    """SMPL-A shape model (10 components + kid blend, with faces) of the synthetic body
    (cached)."""
    return ShapeModel.from_arrays(synthetic_smpl_arrays(num_vertices, seed))


@lru_cache(maxsize=4)
def _joint_regressor(num_vertices: int, seed: int) -> np.ndarray:
    return np.asarray(synthetic_smpl_arrays(num_vertices, seed)["J_regressor"], np.float64)


def betas_for_height(model: ShapeModel, height_m: float, kid_blend: float = 0.0) -> np.ndarray:
    """(S,) betas with the given kid blend whose zero-pose height is ``height_m`` (secant on
    beta_0)."""
    b = np.zeros(model.num_betas)
    if model.num_betas > 10:
        b[10] = kid_blend
    for _ in range(6):
        h = model.height(b)
        if abs(h - height_m) < 1e-5:
            break
        e = np.zeros_like(b)
        e[0] = 1.0
        b = b + e * (height_m - h) / (model.height(b + e) - h)
    return b


def _yaw(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


@dataclass
class CrowdScene:
    """One synthetic frame with ground truth.

    Attributes:
        K: (3, 3) float64 intrinsics, pixels.
        image_hw: (H, W).
        faces: (F, 3) int64 mesh faces shared by all bodies.
        truth: P true bodies (metric), as ``HumanEstimate`` (``age_class`` and ``height_m`` are
            true).
        estimates: P network-like estimates, same order, ``track_id`` ``p0``, ``p1``, ... (pass
            ``faces`` to ``mahmr_ros.dto.refine`` for its z-buffer).
        errors: (P,) float64 factors e the estimates were scaled by (estimate = e x truth about the
            camera).
        masks: (P, H, W) bool visible instance masks (pixel ownership of the true scene).
        depth_m: (H, W) float32 metric depth (optical-axis z), ``wall_m`` where no body is.
        shape_model: the SMPL-A shape model of the bodies (for the beta update).
    """

    K: np.ndarray
    image_hw: tuple[int, int]
    faces: np.ndarray
    truth: list[HumanEstimate]
    estimates: list[HumanEstimate]
    errors: np.ndarray
    masks: np.ndarray
    depth_m: np.ndarray
    shape_model: ShapeModel
    classes: list[int] = field(default_factory=list)

    def true_depths(self) -> np.ndarray:
        """(P,) pelvis z of the true bodies, metres."""
        return np.array([h.pelvis[2] for h in self.truth], np.float64)

    def sensor_depth_mm(
        self,
        seed: int = 0,
        sigma0_m: float = 0.005,
        k_per_m: float = 1.5e-3,
        hole_fraction: float = 0.03,
        shadow_px: int = 6,
        flying_pixels: bool = True,
        max_range_m: float = 10.0,
    ) -> np.ndarray:
        """An RGB-D-like ``16UC1`` depth image (millimetres, 0 = no reading) of the scene.

        Artefacts of structured-light / ToF sensors (spec dto §11 item 13): depth noise sigma0 + k
        Z^2, flying pixels (a random mix of the two depths across every silhouette edge), IR
        shadows (no reading in a band of ``shadow_px`` pixels right of each person, the projector
        being left of the camera), random holes, no reading beyond ``max_range_m``, and millimetre
        quantisation.

        Returns:
            (H, W) uint16 depth, millimetres.
        """
        rng = np.random.default_rng(seed)
        D = self.depth_m.astype(np.float64)
        D = D + rng.standard_normal(D.shape) * (sigma0_m + k_per_m * D**2)
        owner = (
            np.where(self.masks.any(0), np.argmax(self.masks, axis=0), -1)
            if len(self.masks)
            else None
        )
        if owner is not None and flying_pixels:
            edge = np.zeros(D.shape, bool)
            edge[:, 1:] |= owner[:, 1:] != owner[:, :-1]
            edge[1:, :] |= owner[1:, :] != owner[:-1, :]
            left = np.concatenate([D[:, :1], D[:, :-1]], axis=1)
            t = rng.uniform(0, 1, D.shape)
            D = np.where(edge, t * D + (1 - t) * left, D)
        invalid = (rng.random(D.shape) < hole_fraction) | (D > max_range_m)
        if owner is not None and shadow_px > 0:
            person = owner >= 0
            shadow = np.zeros_like(person)
            for k in range(1, shadow_px + 1):
                shadow[:, k:] |= person[:, :-k]
            invalid |= shadow & ~person
        return np.where(invalid, 0, np.clip(np.round(D * 1000), 1, 65535)).astype(np.uint16)

    def relative_disparity(
        self, seed: int = 0, noise: float = 0.01
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """A monocular-network-like relative disparity: a/Z + b through an unknown affine map, plus
        noise.

        Args:
            seed: draws a in [2, 10] (arbitrary scale), b in [0, 0.005 a] (shift) and the noise.
            noise: relative std of multiplicative Gaussian noise per pixel.

        Returns:
            ((H, W) float32 disparity > 0, (a, b)).
        """
        rng = np.random.default_rng(seed)
        a = float(rng.uniform(2.0, 10.0))
        b = float(rng.uniform(0.0, 0.005 * a))
        disp = (a / self.depth_m + b) * (1.0 + noise * rng.standard_normal(self.depth_m.shape))
        return np.maximum(disp, 1e-6).astype(np.float32), (a, b)


def make_crowd(
    num_people: int,
    seed: int = 0,
    *,
    image_hw: tuple[int, int] = (480, 640),
    focal_px: float | None = None,
    depth_range_m: tuple[float, float] = (1.0, 15.0),
    error_range: tuple[float, float] = (0.05, 0.30),
    camera_height_m: float = 1.4,
    wall_m: float = 30.0,
    num_vertices: int = 6890,
    max_tries: int = 200,
) -> CrowdScene:
    """Draw and render a synthetic crowd.

    People are placed on a floor ``camera_height_m`` below the optical axis (y down), at depths
    uniform in ``depth_range_m`` and lateral positions inside the horizontal field of view; a
    placement whose torso (+-0.3 m) overlaps an earlier person's by half its image width or more is
    redrawn (``max_tries`` times), so most people stay visible.

    Args:
        num_people: P >= 0.
        seed: makes the scene deterministic.
        image_hw: (H, W) pixels.
        focal_px: fx = fy; default 0.9 W (a ~58 deg horizontal FoV). Principal point: image centre.
        depth_range_m: pelvis depth range, metres.
        error_range: range of |e - 1| of the estimates' scale error.
        camera_height_m: camera height above the floor, metres.
        wall_m: depth of the background wall, metres.
        num_vertices: V of the synthetic body (6890 = SMPL; smaller is faster for unit tests).
        max_tries: placement attempts per person.

    Returns:
        CrowdScene.
    """
    if num_people < 0:
        raise ValueError(f"[testing.crowd] num_people must be >= 0, got {num_people}")
    rng = np.random.default_rng(seed)
    H, W = int(image_hw[0]), int(image_hw[1])
    f = float(focal_px) if focal_px is not None else 0.9 * W
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
    model = synthetic_shape_model(num_vertices)
    J_reg = _joint_regressor(num_vertices, 0)
    classes = list(_CLASS_WEIGHTS)
    probs = np.array(list(_CLASS_WEIGHTS.values()))

    bodies, placed = [], []
    for _ in range(num_people):
        cls = int(rng.choice(classes, p=probs / probs.sum()))
        mu, sigma = HEIGHT_PRIORS_M[cls]
        height = float(np.clip(rng.normal(mu, sigma), mu - 2 * sigma, mu + 2 * sigma))
        kid_blend = 0.0 if cls >= 3 else (1.0 if cls == 1 else 0.5)
        betas = betas_for_height(model, height, kid_blend)
        for _ in range(max_tries):
            z = rng.uniform(*depth_range_m)
            half_w = 0.8 * z * (W / 2) / f
            x = rng.uniform(-half_w, half_w)
            lo, hi = (
                f * (x - 0.3) / z,
                f * (x + 0.3) / z,
            )  # image extent of the torso (+-0.3 m), px
            if all(min(hi, h2) - max(lo, l2) < 0.5 * min(hi - lo, h2 - l2) for l2, h2 in placed):
                break
        placed.append((lo, hi))
        bodies.append(
            (cls, height, betas, np.array([x, 0.0, z]), rng.uniform(-np.pi / 3, np.pi / 3))
        )

    truth, verts_all = [], []
    for cls, height, betas, position, yaw in bodies:
        shaped = model.shaped(betas)
        R = _CANON_TO_CAM @ _yaw(yaw)
        J0 = model.pelvis_weights @ shaped
        # Put the soles on the floor: lowest canonical y maps to camera y = camera_height_m.
        feet_y = -(shaped[:, 1].min() - J0[1])  # camera-frame offset of the soles below the pelvis
        pelvis = np.array([position[0], camera_height_m - feet_y, position[2]])
        verts = (shaped - J0) @ R.T + pelvis
        joints = (J_reg @ shaped - J0) @ R.T + pelvis
        rot = np.tile(np.eye(3), (24, 1, 1))
        rot[0] = R
        truth.append(
            _estimate(
                verts,
                joints,
                rot,
                betas,
                pelvis - J0,
                K,
                model.height(betas),
                cls,
                (H, W),
                model.faces,
            )
        )
        verts_all.append(verts)

    if truth:
        raster = rasterize_meshes(np.stack(verts_all), model.faces, K, (H, W))
        owner = raster.person_id.numpy()
        depth = np.where(
            np.isfinite(raster.depth_m.numpy()), raster.depth_m.numpy(), wall_m
        ).astype(np.float32)
        masks = owner[None] == np.arange(len(truth))[:, None, None]
    else:
        depth = np.full((H, W), wall_m, np.float32)
        masks = np.zeros((0, H, W), bool)

    errors = np.empty(len(truth))
    estimates = []
    for i, t in enumerate(truth):
        e = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*error_range)
        errors[i] = e
        b = betas_for_height(
            model, e * t.height_m, float(t.betas[10]) if len(t.betas) > 10 else 0.0
        )
        J0_new = model.rest_pelvis(b)
        est = t.replace(
            vertices=e * t.vertices,
            joints=e * t.joints,
            pelvis=e * t.pelvis,
            transl=e * t.pelvis - J0_new,  # smplx: posed pelvis = J0(beta) + transl
            betas=b,
            height_m=model.height(b),
            is_child=False,
            age_class=None,
            track_id=f"p{i}",
        )
        estimates.append(est)
    return CrowdScene(
        K,
        (H, W),
        model.faces,
        truth,
        estimates,
        errors,
        masks,
        depth,
        model,
        [b[0] for b in bodies],
    )


def _estimate(verts, joints, rot, betas, transl, K, height, cls, hw, faces) -> HumanEstimate:
    uv = project(verts, K)
    H, W = hw
    box = np.r_[uv.min(0), uv.max(0)].clip([0, 0, 0, 0], [W - 1, H - 1, W - 1, H - 1])
    return HumanEstimate(
        score=0.9,
        bbox_xyxy=box,
        rotmats=rot,
        betas=betas,
        transl=transl,
        vertices=verts,
        joints=joints,
        focal=(K[0, 0], K[1, 1]),
        principal_point=(K[0, 2], K[1, 2]),
        height_m=height,
        is_child=cls < 3,
        age_class=cls,
    )
