"""Synthetic Anny crowds walking on a floor, seen as keypoints: ground truth for the floor and the
fit.

A static camera (known height above the floor and pitch, no roll) watches ``num_people`` Anny
bodies (adults, teens and children with heights drawn from the DTO height priors of their class,
random yaw) over a few frames. Each frame gives, per visible person, what a 2D
pose network plus BlazePose would: the 23 Anny keypoints projected into the image with pixel noise,
and metric "world" landmarks that are **adult-scaled** (the true keypoints scaled to 1.70 m, plus
noise), which is how BlazePose sees a child: the right shape, an adult's size. Keypoints outside
the image are reported where they would be (a cut-off person), as BlazePose does.

Special people (each optional): someone ``sitting`` (hips and knees bent, feet on the floor),
someone standing on a ``step`` (soles above the floor), someone ``close`` enough to be cut off at
the knees by the image's bottom edge. Everything is deterministic given the seed. No image is
rendered (fast); use :func:`mahmr_ros.offline.sample.render_sample` for pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mahmr_ros.dto.priors import HEIGHT_PRIORS_M
from mahmr_ros.geometry import project
from mahmr_ros.offline.anny_body import FIT_BONES, AnnyBody, standing_aa
from mahmr_ros.offline.fit import LEVEL_UP, upright_rotation
from mahmr_ros.offline.floor import HEELS
from mahmr_ros.offline.keypoints import PersonKeypoints
from mahmr_ros.offline.place import assumed_K

#: BlazePose's world landmarks are adult-sized whoever it sees: this height, metres.
ADULT_LANDMARK_HEIGHT_M = 1.70
#: DTO height-prior classes (spec dto §3.4) heights are drawn from, per kind (adults: female or
#: male).
KIND_CLASSES = {"adult": (3, 4), "teen": (2,), "child": (1,)}
#: Anny age phenotype range of adults (0.55 ~ 21 years, 0.8 ~ 50 years); children and teens get the
#: age whose average-height body has the drawn height.
ADULT_AGES = (0.55, 0.8)


def _phenotypes(body: AnnyBody, kind: str, rng: np.random.Generator) -> tuple[float, float]:
    """(age, height phenotype) of a person of ``kind`` whose height is drawn from the DTO prior of
    its class, N(mu, sigma) clipped to 2 sigma: adults by the height phenotype at a random adult
    age, children and teens by the age at average height phenotype (clipped to Anny's 1.0-1.7 m
    there)."""
    mu, sigma = HEIGHT_PRIORS_M[int(rng.choice(KIND_CLASSES[kind]))]
    target = float(np.clip(rng.normal(mu, sigma), mu - 2 * sigma, mu + 2 * sigma))
    grid = np.linspace(0.0, 1.0, 101)
    if kind == "adult":
        age = float(rng.uniform(*ADULT_AGES))
        heights = body.height_m(
            np.full_like(grid, age), grid
        )  # increasing in the height phenotype
        return age, float(np.interp(target, heights, grid))
    ages = np.linspace(0.1, 0.62, 105)
    heights = body.height_m(ages, np.full_like(ages, 0.5))  # increasing in age up to adulthood
    return float(np.interp(target, heights, ages)), 0.5


@dataclass
class CrowdPerson:
    """Ground truth of one person in one frame (camera frame, metres)."""

    id: int
    kind: str  # adult, teen, child
    pose: str  # standing, sitting, step (standing on a step), close (cut off at the knees)
    age: float
    height_ph: float
    height_m: float
    R_cam_anny: np.ndarray
    bone_aa: np.ndarray
    keypoints_cam: np.ndarray  # (23, 3)
    pelvis_cam: np.ndarray  # (3,)

    @property
    def is_child(self) -> bool:
        return self.height_m < 1.40


@dataclass
class CrowdFrame:
    """One frame: the people as keypoints (input) and their truth, same order."""

    people: list[PersonKeypoints]
    truth: list[CrowdPerson] = field(default_factory=list)


@dataclass
class AnnyCrowd:
    """A static camera's frames of one crowd."""

    K: np.ndarray
    image_hw: tuple[int, int]
    camera_height_m: float
    pitch_deg: float
    frames: list[CrowdFrame]


def _pitch(deg: float) -> np.ndarray:
    """Level-camera axes -> axes of a camera tilted down by ``deg``."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def sitting_aa() -> np.ndarray:
    """(len(FIT_BONES), 3) a seated pose: thighs forward (hips bent ~80 degrees), shins down."""
    aa = standing_aa()
    for side in ("L", "R"):
        aa[FIT_BONES.index(f"upperleg01.{side}")] = (-1.4, 0.0, 0.0)
        aa[FIT_BONES.index(f"lowerleg01.{side}")] = (1.4, 0.0, 0.0)
    return aa


def make_anny_crowd(
    body: AnnyBody,
    num_people: int = 20,
    frames: int = 6,
    *,
    seed: int = 0,
    camera_height_m: float = 1.35,
    pitch_deg: float = 12.0,
    image_wh: tuple[int, int] = (640, 480),
    hfov_deg: float = 60.0,
    kinds: dict[str, float] | None = None,
    depth_range_m: tuple[float, float] = (2.5, 9.0),
    speed_m: float = 0.12,
    pixel_sigma_px: float = 1.5,
    world_sigma_m: float = 0.02,
    sitting: int = 0,
    step: int = 0,
    close: int = 0,
    step_height_m: float = 0.45,
) -> AnnyCrowd:
    """Draw a crowd and its frames (see the module docstring).

    Args:
        body: the Anny body.
        num_people: people in the crowd (the special ones included).
        frames: frames of the static camera; people walk ``speed_m`` per frame in a random
            direction (sitting people stay).
        seed: makes everything deterministic.
        camera_height_m: camera height above the floor, metres.
        pitch_deg: downward tilt of the camera, degrees.
        image_wh: image size, pixels.
        hfov_deg: horizontal field of view (K from :func:`~mahmr_ros.offline.place.assumed_K`).
        kinds: share of ``adult``, ``teen``, ``child`` among the ordinary people (default 0.7 / 0.1
            / 0.2).
        depth_range_m: depth range people are drawn in (level frame), metres.
        pixel_sigma_px: 2D keypoint noise, pixels.
        world_sigma_m: 3D landmark noise, metres.
        sitting, step, close: how many of the people are seated, stand on a step, or stand close
            enough to be cut off at the knees (the first ids, in that order).
        step_height_m: height of the step, metres.
    """
    rng = np.random.default_rng(seed)
    W, H = image_wh
    K = assumed_K(W, H, hfov_deg)
    R_pitch = _pitch(pitch_deg)
    shares = kinds or {"adult": 0.7, "teen": 0.1, "child": 0.2}
    names = list(shares)
    probs = np.array([shares[k] for k in names], np.float64)
    special = ["sitting"] * sitting + ["step"] * step + ["close"] * close
    people = []
    for i in range(num_people):
        pose = special[i] if i < len(special) else "standing"
        kind = "adult" if pose != "standing" else str(rng.choice(names, p=probs / probs.sum()))
        age, height_ph = _phenotypes(body, kind, rng)
        yaw = float(rng.uniform(-np.pi, np.pi))
        if pose == "close":
            z = 1.3
        else:
            z = float(rng.uniform(*depth_range_m))
        x = float(rng.uniform(-0.7, 0.7)) * z * math.tan(math.radians(hfov_deg) / 2)
        heading = rng.uniform(-np.pi, np.pi)
        step_m = (0.0 if pose == "sitting" else speed_m) * np.array(
            [np.cos(heading), np.sin(heading)]
        )
        people.append((i, kind, pose, age, height_ph, yaw, x, z, step_m))
    ages = torch.tensor([p[3] for p in people], dtype=body.dtype)
    hphs = torch.tensor([p[4] for p in people], dtype=body.dtype)
    aa = np.stack([sitting_aa() if p[2] == "sitting" else standing_aa() for p in people])
    with torch.no_grad():
        kp_model = body.keypoints_fast(
            torch.as_tensor(aa, dtype=body.dtype), ages, hphs
        ).numpy()  # (N, K, 3)
    heights = body.height_m(ages.numpy(), hphs.numpy())
    lift = body.keypoint_lift_m(ages.numpy(), hphs.numpy())
    out = []
    for t in range(frames):
        frame = CrowdFrame([])
        for n, (i, kind, pose, age, height_ph, yaw, x0, z0, vel) in enumerate(people):
            x, z = x0 + vel[0] * t, max(z0 + vel[1] * t, 1.0)
            R_level = upright_rotation(LEVEL_UP, yaw)
            kp_level = kp_model[n] @ R_level.T  # level camera axes, model origin at 0
            # the lower heel's soles on the floor (or on the step)
            floor_y = camera_height_m - (step_height_m if pose == "step" else 0.0)
            soles_y = max(kp_level[j, 1] + lift[n, j] for j in HEELS)  # y down: the lowest sole
            kp_level = kp_level + [x, floor_y - soles_y, z]
            kp_cam = kp_level @ R_pitch.T
            if np.any(kp_cam[:, 2] < 0.3):
                continue
            uv = project(kp_cam, K) + rng.normal(0.0, pixel_sigma_px, (len(kp_cam), 2))
            hips = kp_cam[[11, 12]].mean(0)
            # BlazePose-like world landmarks: the right shape at an adult's size, hip-centred,
            # noisy
            world = (kp_cam - hips) * (ADULT_LANDMARK_HEIGHT_M / heights[n])
            world = world + rng.normal(0.0, world_sigma_m, world.shape)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] <= W - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= H - 1)
            if inside.sum() < 6:  # out of view this frame
                continue
            box = np.array([*uv[inside].min(0), *uv[inside].max(0)])
            scores = np.where(inside, 0.9, 0.6)  # cut-off keypoints: a guess with a middling score
            frame.people.append(PersonKeypoints(box, uv, scores, 0.9, world, source="synthetic"))
            frame.truth.append(
                CrowdPerson(
                    i,
                    kind,
                    pose,
                    age,
                    height_ph,
                    float(heights[n]),
                    R_pitch @ R_level,
                    aa[n],
                    kp_cam,
                    hips,
                )  # fmt: skip
            )
        out.append(frame)
    return AnnyCrowd(K, (H, W), camera_height_m, pitch_deg, out)
