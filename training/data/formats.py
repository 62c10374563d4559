"""Readers for the annotation files of the training and evaluation sets (spec mahmr_model §7, dto
§7).

One function per format; each returns a list of ``ImageAnnotation`` (``annotation.py``, one per
image). Readers only parse and reshape: no image is opened and no body model is run. Formats whose
SMPL parameters are given in a world frame (AGORA, BEDLAM, 3DPW, Hi4D) keep them there with
per-person extrinsics; ``world_to_camera`` moves them into the camera frame once the caller can
supply the rest-pose root joint J0(beta) (it needs a body model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from training.data.annotation import (
    CROWDPOSE14_HIPS,
    DETECT_ALL_PEOPLE,
    NUM_BETAS,
    ImageAnnotation,
    _np,
    _stack,
    intrinsics,
    load_annots,
    pad_betas,
    world_to_camera,
)

# Re-exported so that callers can keep importing everything annotation-related from here.
__all__ = [
    "CROWDPOSE14_HIPS",
    "DETECT_ALL_PEOPLE",
    "NUM_BETAS",
    "READERS",
    "ImageAnnotation",
    "intrinsics",
    "load_annots",
    "pad_betas",
    "read",
    "world_to_camera",
]


# ------------------------------------------------------------------------------------ SMPL pGT


def read_dto_humans(
    path: str | Path, dataset: str, has_3d: bool | None = None
) -> list[ImageAnnotation]:
    """DTO-Humans ``*_CHMR_SMPL_OPT.npz`` or CameraHMR-derived ``*_CHMR_SMPL.npz`` (spec §7, dto
    §7.4).

    Per image a list of ``{'smpl_param': {'shape', 'pose', 'trans'}, 'cam_param': {'focal',
    'princpt'}}``, already in the camera frame. K is the first person's (the same for everyone).

    Args:
        path: the npz.
        dataset: "coco", "mpii", "insta" or "aic" (selects ``detect_all_people``).
        has_3d: the ``3d_valid`` flag; None = True for ``*_OPT*`` files (DTO-Humans), False
            otherwise.
    """
    if has_3d is None:
        has_3d = "_OPT" in Path(path).name.upper()
    out = []
    for key, people in load_annots(path).items():
        if not people:
            continue
        smpl = [p["smpl_param"] for p in people]
        cam = people[0]["cam_param"]
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset=dataset,
                K=intrinsics(cam["focal"], cam["princpt"]),
                poses=_stack([s["pose"] for s in smpl], 72),
                betas=pad_betas([np.asarray(s["shape"], np.float32).reshape(-1) for s in smpl]),
                transl=_stack([s["trans"] for s in smpl], 3),
                has_3d=has_3d,
                detect_all_people=DETECT_ALL_PEOPLE.get(dataset, True),
            )
        )
    return out


def read_camerahmr_release(
    path: str | Path, dataset: str, dir_depth: int | None = None
) -> list[ImageAnnotation]:
    """CameraHMR release npz (instance-level arrays grouped by ``imgname``, spec dto §7.2).

    Args:
        path: e.g. ``coco-release.npz``.
        dataset: short name; Insta uses 3 path components for the image key, the others 1.
        dir_depth: number of trailing path components kept in the key; None = 3 for insta, else 1.

    Returns:
        One camera-frame, not-3D-valid annotation per image, with ``keypoints_2d`` = the first 44
        ``gtkps``.
    """
    dir_depth = dir_depth or (3 if dataset.startswith("insta") else 1)
    with np.load(path, allow_pickle=True) as data:
        names = [str(n) for n in data["imgname"]]
        pose = data["pose_cam"] if "pose_cam" in data.files else data["pose"]
        trans = data["trans_cam"] if "trans_cam" in data.files else data["cam_t"]
        shape, cam_int = data["shape"], data["cam_int"]
        kps = data["gtkps"][:, :44] if "gtkps" in data.files else None
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        key = "/".join(name.replace("\\", "/").split("/")[-dir_depth:])
        groups.setdefault(key, []).append(i)
    out = []
    for key, rows in groups.items():
        rows = np.asarray(rows)
        out.append(
            ImageAnnotation(
                image=key,
                dataset=dataset,
                K=np.asarray(cam_int[rows[0]], np.float32),
                poses=_stack(pose[rows], 72),
                betas=pad_betas(shape[rows]),
                transl=_stack(trans[rows], 3),
                keypoints_2d=None if kps is None else np.asarray(kps[rows], np.float32),
                has_3d=False,
                detect_all_people=DETECT_ALL_PEOPLE.get(dataset, True),
            )
        )
    return out


def _read_per_person_arrays(images: Mapping, dataset: str) -> list[ImageAnnotation]:
    out = []
    for key, d in images.items():
        if len(d["pose_cam"]) == 0:
            continue
        extras = {k: d[k] for k in ("is_released", "is_optimize") if k in d}
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset=dataset,
                K=np.asarray(d["cam_int"][0], np.float32),
                poses=_stack(d["pose_cam"], 72),
                betas=pad_betas(d["shape"]),
                transl=_stack(d["trans_cam"], 3),
                has_3d=np.asarray(d["shape"]).shape[-1] == NUM_BETAS,
                detect_all_people=DETECT_ALL_PEOPLE.get(dataset, True),
                extras=extras,
            )
        )
    return out


def read_stage_a(path: str | Path, dataset: str) -> list[ImageAnnotation]:
    """DTO stage-A npz (``annots`` = {image: {trans_cam, pose_cam, shape (N,10), cam_int}}, dto
    §7.1)."""
    return _read_per_person_arrays(load_annots(path), dataset)


def read_dto_output(path: str | Path, dataset: str) -> list[ImageAnnotation]:
    """Raw DTO output ``<input>_opt.npz`` (one npz member per image key, 11 betas, dto §7.3).

    ``is_released`` and ``is_optimize`` are kept in ``extras``; ``has_3d`` is True (11-dim SMPL-A
    betas).
    """
    with np.load(path, allow_pickle=True) as data:
        images = {key: data[key][()] for key in data.files}
    return _read_per_person_arrays(images, dataset)


# -------------------------------------------------------------------------------- world-frame SMPL


def smpl_poses(*params: Mapping) -> np.ndarray:
    """(P, 72) float32 axis-angle poses from SMPL parameter dicts, each holding ``global_orient``
    (n, 3) and ``body_pose`` (n, 69) (or flat) for n >= 1 people, stacked in order."""
    poses = [
        np.concatenate(
            [_np(p["global_orient"]).reshape(-1, 3), _np(p["body_pose"]).reshape(-1, 69)], 1
        )
        for p in params
    ]
    return np.concatenate(poses)


def read_agora(path: str | Path) -> list[ImageAnnotation]:
    """AGORA ``annots_smpl_{train_fit,validation}.npz`` (SAT-HMR release, spec §7).

    Only ``isValid`` people are kept; betas (1, 10|11) are flattened and padded; parameters are in
    the world frame with per-person extrinsics.
    """
    out = []
    for key, d in load_annots(path).items():
        valid = np.asarray(d["isValid"], bool)
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            continue
        smpl = [d["smpl_gt"][i] for i in idx]
        poses = smpl_poses(*smpl)
        kid = np.asarray(d.get("kid", np.zeros(len(valid), bool)), bool)[idx]
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="agora",
                K=_np(d["cam_intrinsics"]).reshape(3, 3),
                poses=poses,
                betas=pad_betas([_np(s["betas"]).reshape(-1) for s in smpl]),
                transl=_stack([_np(s["transl"]) for s in smpl], 3),
                frame="world",
                cam_rot=_np(d["cam_rot"]).reshape(-1, 3, 3)[idx],
                cam_trans=_np(d["cam_trans"]).reshape(-1, 3)[idx],
                is_kid=kid,
                has_3d=True,
                detect_all_people=True,
            )
        )
    return out


def read_bedlam(path: str | Path) -> list[ImageAnnotation]:
    """BEDLAM ``bedlam_smpl_*.npz`` (spec §7): world-frame pose/transl, per-person extrinsics.

    Images whose key contains ``closeup`` are flagged ``rotate_cw90``; K is taken as given (for the
    rotated image, which is what the official loader feeds the network).
    """
    out = []
    for key, d in load_annots(path).items():
        if len(d["pose_world"]) == 0:
            continue
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="bedlam",
                K=_np(d["cam_int"]).reshape(3, 3),
                poses=_stack(d["pose_world"], 72),
                betas=pad_betas(d["shape"]),
                transl=_stack(d["trans_world"], 3),
                frame="world",
                cam_rot=_np(d["cam_rot"]).reshape(-1, 3, 3),
                cam_trans=_np(d["cam_trans"]).reshape(-1, 3),
                has_3d=True,
                detect_all_people=True,
                rotate_cw90="closeup" in str(key),
            )
        )
    return out


def read_3dpw(path: str | Path) -> list[ImageAnnotation]:
    """3DPW ``annots_smpl_{train,test}_genders.npz``: pickled torch tensors (torch must be
    importable).

    One camera per image (``cam_rot`` (3, 3), ``cam_trans`` (3,)), broadcast to every person.
    """
    out = []
    for key, d in load_annots(path).items():
        poses = smpl_poses(d)
        n = len(poses)
        if n == 0:
            continue
        genders = d.get("genders", d.get("gender"))
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="3dpw",
                K=_np(d["cam_intrinsics"]).reshape(3, 3),
                poses=poses,
                betas=pad_betas(_np(d["betas"])),
                transl=_np(d["transl"]).reshape(n, 3),
                frame="world",
                cam_rot=np.broadcast_to(_np(d["cam_rot"]).reshape(3, 3), (n, 3, 3)).copy(),
                cam_trans=np.broadcast_to(_np(d["cam_trans"]).reshape(3), (n, 3)).copy(),
                genders=None if genders is None else [str(g) for g in list(genders)],
                has_3d=True,
                detect_all_people=DETECT_ALL_PEOPLE["3dpw"],
            )
        )
    return out


def read_hi4d(path: str | Path) -> list[ImageAnnotation]:
    """Hi4D ``hi4d_smpl_{train,val,test}.npz`` (``prepare_hi4d.py``): per-person camera + world
    SMPL."""
    out = []
    for key, people in load_annots(path).items():
        if not people:
            continue
        p0 = people[0]
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="hi4d",
                K=intrinsics(p0["focal"], p0["princpt"]),
                poses=smpl_poses(*people),
                betas=pad_betas([_np(p["betas"]).reshape(-1) for p in people]),
                transl=_stack([_np(p["transl"]) for p in people], 3),
                frame="world",
                cam_rot=np.stack([_np(p["cam_rot"]).reshape(3, 3) for p in people]),
                cam_trans=_stack([_np(p["cam_trans"]) for p in people], 3),
                genders=[str(p["genders"]) for p in people],
                has_3d=True,
                detect_all_people=True,
            )
        )
    return out


# ----------------------------------------------------------------------------------- keypoint sets


#: RelativeHuman's 19-joint layouts -> CrowdPose-14 (L/R shoulder, elbow, wrist, hip, knee, ankle,
#: head top, neck). The joint names are the dataset authors' (Relative_Human toolbox): BK_19 =
#: head_top, nose, neck, L/R eye, L/R shoulder, L/R elbow, L/R wrist, L/R hip, L/R knee, L/R ankle,
#: L/R big toe; OCHuman_19 = R/L shoulder, elbow, wrist (right first), R/L hip, knee, ankle,
#: head_top, neck, R/L ear, nose, R/L eye. The official evaluation maps joints BY NAME and the
#: 19-joint "Neck" never matches CrowdPose's "Neck_LSP", so the neck of 19-joint people is invalid
#: (-1 here): reproduced on purpose, it is the official protocol.
BK19_TO_CROWDPOSE14 = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, -1)
OCHUMAN19_TO_CROWDPOSE14 = (3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8, 12, -1)


def crowdpose14_from_19(kp19: np.ndarray, layout: str) -> np.ndarray:
    """(19, 3) BK / OCHuman keypoints (x, y, visibility) -> (14, 3) CrowdPose-14; unmapped ones
    invisible."""
    table = np.asarray(BK19_TO_CROWDPOSE14 if layout == "bk19" else OCHUMAN19_TO_CROWDPOSE14)
    out = np.asarray(kp19, np.float32)[np.maximum(table, 0)].copy()
    out[table < 0] = 0.0
    return out


def read_relative_human(path: str | Path, training: bool = False) -> list[ImageAnnotation]:
    """RelativeHuman ``{train,val,test}_annots.npz`` (spec §7, dto §7.5, dto §8).

    People without ``kp2d`` are dropped (the eval ignores them). Every person comes out as
    CrowdPose-14 (P, 14, 3): 14-joint people as given, 19-joint people (BK: 7-character file stem,
    else OCHuman; most children and babies are in these subsets) mapped by ``crowdpose14_from_19``
    as the official evaluation does. ``extras["kp_layout"]`` names each person's source layout
    ("crowdpose14", "bk19", "ochuman19").

    Args:
        path: the npz.
        training: mark the hips invisible, as the official training loader does.
    """
    out = []
    for key, people in load_annots(path).items():
        people = [p for p in people if p.get("kp2d") is not None]
        if not people:
            continue
        stem = Path(str(key)).stem
        layouts, kps = [], []
        for p in people:
            k = np.asarray(p["kp2d"], np.float32).reshape(-1, 3)
            if len(k) == 14:
                layouts.append("crowdpose14")
            elif len(k) == 19:
                layouts.append("bk19" if len(stem) == 7 else "ochuman19")
                k = crowdpose14_from_19(k, layouts[-1])
            else:
                raise ValueError(
                    f"[training.data] {path}: {key}: a person has {len(k)} keypoints (14 or 19)"
                )
            kps.append(k)
        kp = np.stack(kps)
        if training:
            kp[:, list(CROWDPOSE14_HIPS), 2] = 0
        age = np.asarray([int(p.get("age", -1)) for p in people], np.int8)
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="rh",
                boxes_xyxy=_stack([p["bbox"] for p in people], 4),
                keypoints_2d=kp,
                age=age,
                is_kid=(age == 2) | (age == 3),
                depth_id=np.asarray([int(p.get("depth_id", -1)) for p in people], np.int32),
                has_3d=False,
                detect_all_people=True,
                extras={"kp_layout": layouts},
            )
        )
    return out


def read_mupots(path: str | Path) -> list[ImageAnnotation]:
    """MuPoTS-3D ``mupots_annots.npz``: per person H36M-like 17-joint 2D (px) and 3D (mm, stored in
    m)."""
    out = []
    for key, people in load_annots(path).items():
        if not people:
            continue
        vis = np.stack([np.asarray(p["vis"], np.float32).reshape(17) for p in people])
        kp2 = np.stack([np.asarray(p["annot_2d"], np.float32).reshape(17, 2) for p in people])
        kp3 = (
            np.stack([np.asarray(p["annot_3d"], np.float32).reshape(17, 3) for p in people])
            / 1000.0
        )
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="mupots",
                keypoints_2d=np.concatenate([kp2, vis[..., None]], -1),
                keypoints_3d=np.concatenate([kp3, vis[..., None]], -1),
                has_3d=False,
                detect_all_people=True,
            )
        )
    return out


def read_panoptic(path: str | Path) -> list[ImageAnnotation]:
    """CMU Panoptic ``annots_test.npz``: per image J24 ``kpts3d`` (P, J, 4) m + visibility,
    ``kpts2d``."""
    out = []
    for key, d in load_annots(path).items():
        k3 = np.asarray(d["kpts3d"], np.float32)
        if len(k3) == 0:
            continue
        k2 = np.asarray(d["kpts2d"], np.float32)
        vis2 = k2[..., 2:3] if k2.shape[-1] > 2 else k3[..., 3:4]
        out.append(
            ImageAnnotation(
                image=str(key),
                dataset="panoptic",
                keypoints_2d=np.concatenate([k2[..., :2], vis2], -1),
                keypoints_3d=k3[..., :4],
                image_hw=(int(d["height"]), int(d["width"])),
                has_3d=False,
                detect_all_people=True,
            )
        )
    return out


READERS: dict[str, Callable[..., list[ImageAnnotation]]] = {
    "dto_humans": read_dto_humans,
    "camerahmr": read_camerahmr_release,
    "stage_a": read_stage_a,
    "dto_output": read_dto_output,
    "agora": read_agora,
    "bedlam": read_bedlam,
    "3dpw": read_3dpw,
    "hi4d": read_hi4d,
    "rh": read_relative_human,
    "mupots": read_mupots,
    "panoptic": read_panoptic,
}


def read(fmt: str, path: str | Path, **kwargs) -> list[ImageAnnotation]:
    """Read an annotation file by format name (a key of ``READERS``)."""
    if fmt not in READERS:
        raise ValueError(f"[training.data] unknown format {fmt!r}; known: {sorted(READERS)}")
    return READERS[fmt](path, **kwargs)
