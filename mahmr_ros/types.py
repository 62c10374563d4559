"""Plain data types shared by the ROS-free core, the node, the CLI and training.

Shape letters (used in every docstring of the package):
    B images, Q queries, P people kept, N tokens, C channels, V vertices (6890 for SMPL),
    F faces, J joints, H,W original image pixels, Hp,Wp network input pixels.

Frames: ``_cam`` is the OpenCV optical frame of the input image (x right, y down, z forward,
metres); ``_img`` are original-image pixels (OpenCV/ROS convention: pixel centres on integers).
All arrays here are numpy float32 unless stated otherwise, so they convert to ROS messages without
copies of meaning.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np


def _f32(x, shape=None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if shape is not None:
        arr = arr.reshape(shape)
    return arr


@dataclass
class HumanEstimate:
    """One person in one frame, metric, in the camera frame of the input image.

    Contract fields (``shared/spec/api.md`` §1) come first; the rest are extensions with defaults.

    Attributes:
        score: detection confidence in [0, 1].
        bbox_xyxy: (4,) px, original image, (x1, y1, x2, y2).
        rotmats: (K, 3, 3) body-model joint rotations, K = 24 for SMPL (index 0 = global orient,
            camera frame). Model-specific for other bodies (documented by ``body_model``).
        betas: (S,) shape coefficients; SMPL: 10 PCs + the kid blend at index 10 (S = 11).
        transl: (3,) m, model-origin translation in the camera frame (NOT the pelvis, spec §8 #14).
        vertices: (V, 3) m, camera frame (already include ``transl``).
        joints: (J, 3) m, camera frame; for SMPL the 45 smplx joints, joint 0 = pelvis.
        focal: (2,) fx, fy in original-image pixels of the camera the person was placed with.
        principal_point: (2,) cx, cy in original-image pixels (same camera).
        height_m: zero-pose (T-pose) height from the shape, metres.
        is_child: True when the body is child-sized (kid blend or height, see the estimator).
        track_id: stable body id (REP-155 style, starts with a letter); "" until a tracker assigns
            one.
        body_model: "smpl" or "anny" (selects the topology on ``/humans/meshes/topology``).
        pose: flat model-specific pose for messages (SMPL: 72 axis-angle values); None = derive
            from rotmats.
        pelvis: (3,) m, camera frame, mid-hip position; None = ``joints[0]``.
        orientation: (3, 3) body orientation in the camera frame; None = ``rotmats[0]``.
        keypoints_2d: (J, 2) px in the original image, or None.
        depth_sigma_m: 1-sigma translation uncertainty along the camera ray (DTO); 0 = not refined.
        velocity: (3,) m/s in the camera frame, from the tracker (zeros when unknown).
        dto_scale: the factor DTO moved the person by along the camera ray (1 = unchanged); the new
            position, size and metric height are ``dto_scale`` times the estimator's. (Was
            ``scale``.)
        age_class: DTO height-prior class 0 baby .. 5 adult neutral (spec dto §3.4), or None =
            unknown.
        dto_height_z: how implausible DTO's refined metric height H is under the person's height
            prior (mu, sigma): the standardised deviation |H - mu| / sigma (0 = at the prior mean;
            lower is better); NaN when not refined. (Was ``quality``.)
        extras: free-form per-estimator data for humans and logs (e.g. ``extras["dto"]``, DTO's
            per-person report). Purely informational: consumers must not need it, and the core
            decides nothing from it (it reads only the deprecated ``extras["faces"]`` /
            ``extras["height_sigma_m"]`` of old callers, with a warning). Anything another module
            needs is a typed field or an argument.
        height_sigma_m: 1-sigma uncertainty of ``height_m`` when the estimator measured the height
            (e.g. the offline estimator sizing a person by the floor), metres; None = the height is
            only the shape's estimate. DTO takes a measured height as a known-height prior instead
            of the age-class prior.

    Renamed fields keep their old names as deprecated aliases (``scale`` -> ``dto_scale``,
    ``quality`` -> ``dto_height_z``; reading, assigning and ``replace(scale=...)`` work and warn).
    """

    score: float
    bbox_xyxy: np.ndarray
    rotmats: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    focal: np.ndarray
    principal_point: np.ndarray
    height_m: float
    is_child: bool
    track_id: str = ""
    body_model: str = "smpl"
    pose: np.ndarray | None = None
    pelvis: np.ndarray | None = None
    orientation: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    depth_sigma_m: float = 0.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    dto_scale: float = 1.0
    age_class: int | None = None
    dto_height_z: float = float("nan")
    extras: dict = field(default_factory=dict)
    height_sigma_m: float | None = None

    def __post_init__(self) -> None:
        self.score = float(self.score)
        self.bbox_xyxy = _f32(self.bbox_xyxy, (4,))
        self.rotmats = _f32(self.rotmats)
        self.betas = _f32(self.betas).reshape(-1)
        self.transl = _f32(self.transl, (3,))
        self.vertices = _f32(self.vertices)
        self.joints = _f32(self.joints)
        self.focal = _f32(self.focal, (2,))
        self.principal_point = _f32(self.principal_point, (2,))
        self.height_m = float(self.height_m)
        self.is_child = bool(self.is_child)
        self.velocity = _f32(self.velocity, (3,))
        if self.pelvis is None:
            self.pelvis = self.joints[0].copy()
        self.pelvis = _f32(self.pelvis, (3,))
        if self.orientation is None and self.rotmats.ndim == 3 and len(self.rotmats):
            self.orientation = self.rotmats[0].copy()
        if self.orientation is not None:
            self.orientation = _f32(self.orientation, (3, 3))
        if self.height_sigma_m is not None:
            self.height_sigma_m = float(self.height_sigma_m)
            if not self.height_sigma_m > 0:
                raise ValueError(
                    "[types] height_sigma_m must be > 0 m or None (not measured), got "
                    f"{self.height_sigma_m}"
                )

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsics (original-image pixels) the person was placed with."""
        fx, fy = self.focal
        cx, cy = self.principal_point
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)

    def replace(self, **changes) -> HumanEstimate:
        """A copy with some fields changed (dataclasses.replace, re-validated)."""
        for old, new in _RENAMED_FIELDS.items():
            if old in changes:
                _warn_renamed(old, new, stacklevel=3)
                changes[new] = changes.pop(old)
        return dataclasses.replace(self, **changes)

    @property
    def scale(self) -> float:
        """Deprecated alias of ``dto_scale``."""
        _warn_renamed("scale", "dto_scale")
        return self.dto_scale

    @scale.setter
    def scale(self, value: float) -> None:
        _warn_renamed("scale", "dto_scale")
        self.dto_scale = value

    @property
    def quality(self) -> float:
        """Deprecated alias of ``dto_height_z``."""
        _warn_renamed("quality", "dto_height_z")
        return self.dto_height_z

    @quality.setter
    def quality(self, value: float) -> None:
        _warn_renamed("quality", "dto_height_z")
        self.dto_height_z = value


# Old public name -> new name of renamed HumanEstimate fields (deprecated aliases, issue 14).
_RENAMED_FIELDS = {"scale": "dto_scale", "quality": "dto_height_z"}


def _warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    msg = f"HumanEstimate.{old} is deprecated, use HumanEstimate.{new}"
    warnings.warn(msg, DeprecationWarning, stacklevel=stacklevel)


@dataclass
class MeshTopology:
    """Static mesh description of a body model (published once on ``/humans/meshes/topology``).

    Attributes:
        body_model: "smpl", "anny", ...
        faces: (F, 3) uint32 vertex indices, counter-clockwise seen from outside.
        joint_names: names of the J joints in ``HumanEstimate.joints`` order.
    """

    body_model: str
    faces: np.ndarray
    joint_names: list[str]

    def __post_init__(self) -> None:
        self.faces = np.ascontiguousarray(self.faces, dtype=np.uint32).reshape(-1, 3)

    @property
    def num_vertices(self) -> int:
        return int(self.faces.max()) + 1 if self.faces.size else 0


@dataclass
class FloorEstimate:
    """The floor the people stand on, as seen from the camera: its height below the camera and the
    pitch.

    The floor is a plane; the camera has no roll relative to it (``roll_rad`` is kept at 0 by the
    offline estimator). In the camera frame (OpenCV optical), floor points X satisfy
    ``up_cam . X = -camera_height_m``.

    Attributes:
        camera_height_m: height of the camera's optical centre above the floor, metres.
        pitch_rad: downward tilt of the optical axis below the horizon, radians (> 0 = looking
            down).
        camera_height_sigma_m: 1-sigma of ``camera_height_m`` (0 = given, not estimated).
        pitch_sigma_rad: 1-sigma of ``pitch_rad`` (0 = given).
        people: people whose feet support the estimate (inliers, pooled over ``frames``).
        frames: frames pooled into the estimate (1 for a single image).
        source: ``given`` (the user's camera height and pitch) or ``estimated`` (from the people's
            feet).
        roll_rad: roll of the camera about its optical axis, radians (0: not estimated).
    """

    camera_height_m: float
    pitch_rad: float
    camera_height_sigma_m: float = 0.0
    pitch_sigma_rad: float = 0.0
    people: int = 0
    frames: int = 0
    source: str = "estimated"
    roll_rad: float = 0.0

    @property
    def up_cam(self) -> np.ndarray:
        """(3,) float64 unit 'up' of the floor in the camera frame (the roll is ignored)."""
        return np.array([0.0, -np.cos(self.pitch_rad), -np.sin(self.pitch_rad)])

    def T_cam_floor(self) -> np.ndarray:
        """(4, 4) float64 pose of a floor frame in the camera frame (floor-frame points -> camera
        points).

        The floor frame (REP-103 axes) has its origin on the floor right below the camera's optical
        centre, x forward (the optical axis projected onto the floor), y left, z up.
        """
        up = self.up_cam
        forward = np.array([0.0, -np.sin(self.pitch_rad), np.cos(self.pitch_rad)])
        T = np.eye(4)
        T[:3, 0], T[:3, 1], T[:3, 2] = forward, np.cross(up, forward), up
        T[:3, 3] = -self.camera_height_m * up
        return T


@dataclass
class Estimation:
    """What an estimator returns for one frame (before DTO and tracking).

    Attributes:
        humans: the people found, in the original image's camera frame.
        K_used: (3, 3) intrinsics in original-image pixels the people are expressed for.
        K_estimated: True when ``K_used`` was not given by the caller (FoV head or assumed FoV).
        timings_ms: per-stage wall times of the estimator, milliseconds.
        floor: the floor the estimator placed people on (given or estimated), or None.
    """

    humans: list[HumanEstimate]
    K_used: np.ndarray
    K_estimated: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    floor: FloorEstimate | None = None


@dataclass
class FrameResult:
    """The result of ``Pipeline.process`` for one frame (``shared/spec/api.md`` §4).

    Attributes:
        humans: people with stable ``track_id`` (after DTO and tracking).
        K_used: (3, 3) float64 intrinsics (original-image pixels) the outputs are expressed for.
        K_estimated: True when the caller gave no K.
        timings_ms: per-stage wall times, milliseconds (``total`` included).
        body_model: name of the body model of ``humans`` ("smpl", "anny").
        stamp: the caller's ``stamp`` argument, passed through untouched (any type, may be None).
        image_hw: (H, W) of the input image.
        stamp_ns: the frame's time in integer nanoseconds (from ``stamp_ns``, or ``stamp`` by the
            rule of ``Pipeline.process``), or None when the caller gave no time.
        floor: the estimator's floor (camera height and pitch above the plane people stand on), or
            None.
    """

    humans: list[HumanEstimate]
    K_used: np.ndarray
    K_estimated: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    body_model: str = "smpl"
    stamp: object = None
    image_hw: tuple[int, int] = (0, 0)
    stamp_ns: int | None = None
    floor: FloorEstimate | None = None
