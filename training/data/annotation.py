"""``ImageAnnotation``: the ground truth of one image, common currency of every reader
(``formats.py``), the datasets, the synthetic generator and ``training.eval``; plus the small
helpers the readers share and the world -> camera conversion of SMPL parameters (spec mahmr_model
§4.5, §7).

Conventions of every ``ImageAnnotation`` (P people in the image):
    * ``K`` is in ORIGINAL-image pixels, OpenCV convention as written by the dataset (no half-pixel
      shift).
    * ``poses`` (P, 72) axis-angle, joint 0 = global orient in ``frame``; ``betas`` (P, 11), 10
      SMPL PCs plus the kid blend at index 10 (a 10-dim source is padded with 0); ``transl`` (P, 3)
      metres, SMPL-origin translation (not the pelvis) in ``frame``.
    * ``frame`` is ``"camera"`` (OpenCV optical frame: x right, y down, z forward) or ``"world"``;
      in the latter case ``cam_rot`` (P, 3, 3) and ``cam_trans`` (P, 3) map world points into the
      camera:
      x_cam = R x + T.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mahmr_ros.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

NUM_BETAS = 11
# `detect_all_people` per dataset (spec §5.2): False where not every person in the image is
# annotated.
DETECT_ALL_PEOPLE = {
    "agora": True,
    "bedlam": True,
    "coco": True,
    "insta": True,
    "aic": True,
    "hi4d": True,
    "rh": True,
    "mpii": False,
    "3dpw": False,
}
# CrowdPose-14 layout used by RelativeHuman (spec §1.9 `use_extra_j`): hips are indices 6, 7.
CROWDPOSE14_HIPS = (6, 7)


@dataclass
class ImageAnnotation:
    """Ground truth of one image, in the dataset's own original-image pixels.

    Attributes:
        image: image path relative to the dataset's image root (the annotation file's key).
        dataset: short dataset name ("agora", "coco", "rh", ...), selects ``detect_all_people``.
        K: (3, 3) float32 intrinsics, original-image pixels; None when the dataset has none (RH,
            MuPoTS).
        poses: (P, 72) float32 axis-angle (SMPL-24, joint 0 = global orient in ``frame``); None =
            no SMPL.
        betas: (P, 11) float32 shape (10 PCs + kid blend, zero-padded from 10); None = no SMPL.
        transl: (P, 3) float32 metres, SMPL-origin translation in ``frame``; None = no SMPL.
        frame: "camera" or "world" (see the module docstring).
        cam_rot: (P, 3, 3) float32 world-to-camera rotation; only for ``frame == "world"``.
        cam_trans: (P, 3) float32 metres, world-to-camera translation; only for ``frame ==
            "world"``.
        boxes_xyxy: (P, 4) float32 px, original image; None = not given (derived from joints
            later).
        keypoints_2d: (P, J, 3) float32 (x px, y px, visibility in {0, 1} or a confidence); None =
            not given.
        keypoints_3d: (P, J, 4) float32 (x, y, z metres camera frame, visibility); None = not
            given.
        is_kid: (P,) bool, annotated as a child (AGORA ``kid``, RH ages kid/baby).
        age: (P,) int8 RelativeHuman age class 0 adult, 1 teen, 2 kid, 3 baby; -1 = unknown.
        depth_id: (P,) int32 ordinal depth layer (smaller = nearer); -1 = unknown.
        genders: per-person "m" / "f" / "n" strings, or None.
        has_3d: the ``3d_valid`` flag (spec §4.2): pose/betas/j3ds/depth targets may be supervised.
        detect_all_people: every person in the image is annotated (unmatched queries are
            negatives).
        rotate_cw90: the image must be rotated 90 degrees clockwise on load (BEDLAM close-ups); the
            annotation already refers to the rotated image.
        image_hw: (H, W) of the original image when the file says it, else None.
        extras: format-specific fields kept verbatim (never needed by the loaders).
    """

    image: str
    dataset: str
    K: np.ndarray | None = None
    poses: np.ndarray | None = None
    betas: np.ndarray | None = None
    transl: np.ndarray | None = None
    frame: str = "camera"
    cam_rot: np.ndarray | None = None
    cam_trans: np.ndarray | None = None
    boxes_xyxy: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None
    is_kid: np.ndarray | None = None
    age: np.ndarray | None = None
    depth_id: np.ndarray | None = None
    genders: list[str] | None = None
    has_3d: bool = False
    detect_all_people: bool = True
    rotate_cw90: bool = False
    image_hw: tuple[int, int] | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.frame in ("camera", "world"), (
            f"frame must be 'camera' or 'world', got {self.frame!r}"
        )
        n = self.num_people
        if self.is_kid is None:
            self.is_kid = np.zeros(n, bool)
        if self.age is None:
            self.age = np.full(n, -1, np.int8)
        if self.depth_id is None:
            self.depth_id = np.full(n, -1, np.int32)
        for name in ("poses", "betas", "transl", "boxes_xyxy", "keypoints_2d", "keypoints_3d"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, np.float32)
                setattr(self, name, value)
                assert len(value) == n, (
                    f"{self.image}: {name} has {len(value)} people, expected {n}"
                )
        if self.frame == "world":
            assert self.cam_rot is not None and self.cam_trans is not None, (
                "world frame needs extrinsics"
            )

    @property
    def num_people(self) -> int:
        for name in ("poses", "boxes_xyxy", "keypoints_2d", "keypoints_3d"):
            value = getattr(self, name)
            if value is not None:
                return len(value)
        return 0

    @property
    def has_smpl(self) -> bool:
        return self.poses is not None

    def subset(self, keep: np.ndarray) -> ImageAnnotation:
        """The same image restricted to some people.

        Args:
            keep: (P,) bool mask or integer indices of the people to keep.
        """
        keep = np.asarray(keep)
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("K", "extras") or not isinstance(value, np.ndarray | list):
                continue
            if f.name == "genders":
                idx = np.flatnonzero(keep) if keep.dtype == bool else keep
                changes[f.name] = [value[i] for i in idx]
            else:
                changes[f.name] = value[keep]
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------------------------ helpers


def load_annots(path: str | Path) -> dict:
    """The ``annots`` dict of an MA-HMR-style npz (a 0-d object array holding a dict, spec §7)."""
    with np.load(path, allow_pickle=True) as data:
        if "annots" not in data.files:
            raise KeyError(f"[training.data] {path}: no 'annots' member (found {data.files[:5]})")
        return data["annots"][()]


def pad_betas(betas, num_betas: int = NUM_BETAS) -> np.ndarray:
    """Zero-pad (or check) shape coefficients to ``num_betas`` (the kid blend is 0 for adult fits).

    Args:
        betas: (P, S) or (S,) with S <= num_betas.

    Returns:
        (P, num_betas) float32.
    """
    betas = np.asarray(betas, np.float32)
    betas = betas.reshape(-1, betas.shape[-1]) if betas.size else betas.reshape(0, num_betas)
    if betas.shape[1] > num_betas:
        raise ValueError(f"[training.data] {betas.shape[1]} betas, at most {num_betas} supported")
    return np.pad(betas, ((0, 0), (0, num_betas - betas.shape[1])))


def intrinsics(focal, princpt) -> np.ndarray:
    """(3, 3) float32 K from focal (fx, fy) and principal point (cx, cy), pixels."""
    fx, fy = np.broadcast_to(np.asarray(focal, np.float32).reshape(-1), (2,))
    cx, cy = np.asarray(princpt, np.float32).reshape(2)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)


def _np(x) -> np.ndarray:
    """numpy float32 from a numpy array, list or torch tensor (3DPW stores tensors)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float32)


def _stack(rows, width: int) -> np.ndarray:
    return np.asarray(rows, np.float32).reshape(-1, width)


def world_to_camera(
    ann: ImageAnnotation, root_joint_fn: Callable[[np.ndarray], np.ndarray]
) -> ImageAnnotation:
    """Express world-frame SMPL parameters in the camera frame (spec §4.5).

    The global orient is pre-multiplied by the camera rotation. Because SMPL rotates about the
    rest-pose root joint J0(beta), the translation becomes ``t_cam = R (J0 + t) + T - J0``.

    Args:
        ann: an annotation with ``frame == "world"``.
        root_joint_fn: betas (P, 11) float32 -> (P, 3) metres, the root joint of the zero-pose,
            untranslated body (``J_regressor[0] @ v_shaped``; it does not depend on the pose).

    Returns:
        A copy with ``frame == "camera"`` and no extrinsics; camera-frame inputs are returned
        unchanged.
    """
    if ann.frame == "camera" or ann.num_people == 0:
        return dataclasses.replace(ann, frame="camera", cam_rot=None, cam_trans=None)
    R = np.asarray(ann.cam_rot, np.float64).reshape(-1, 3, 3)
    T = np.asarray(ann.cam_trans, np.float64).reshape(-1, 3)
    j0 = np.asarray(root_joint_fn(ann.betas), np.float64).reshape(-1, 3)
    poses = ann.poses.astype(np.float64).copy()
    poses[:, :3] = rotmat_to_axis_angle(R @ axis_angle_to_rotmat(poses[:, :3]))
    transl = np.einsum("pij,pj->pi", R, j0 + ann.transl) + T - j0
    return dataclasses.replace(
        ann,
        poses=poses.astype(np.float32),
        transl=transl.astype(np.float32),
        frame="camera",
        cam_rot=None,
        cam_trans=None,
    )
