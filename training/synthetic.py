"""Synthetic mini-datasets in every annotation format we read: ``python -m training.synthetic --out
DIR``.

Each format gets a folder ``DIR/<format>/`` with its annotation file, an ``images/`` folder and the
camera-frame ground truth the file was made from, in ``DIR/manifest.json`` (reader name, kwargs,
image root, and per image K / poses / betas / transl in the camera frame). Tests read a file back
with its reader and compare with the manifest, so every loader runs in CI without the real data
sets.

People are placed with ``training.data.body.ToyBody`` (a rigid box with SMPL transform semantics,
NOT a human model): random poses near zero with a standing global orient (pi about x, OpenCV camera
frame), betas near zero (kid blend set for some people), depths 2.5-7 m. Images are noise with one
filled rectangle per person over its projected vertices (far people first). Everything is
deterministic given ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from mahmr_ros.geometry import axis_angle_to_rotmat, project, rotmat_to_axis_angle
from training.data.body import ToyBody

IMAGE_WH = (240, 180)
FOCAL_PX = 220.0
# CrowdPose-14 from the 45 SMPL-layout joints (head top ~ head joint 15, neck 12; spec §1.9 order).
CROWDPOSE14_FROM_J45 = [16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8, 15, 12]


@dataclass
class Scene:
    """One synthetic image in the camera frame (P people).

    Attributes:
        key: image key (path relative to the image root).
        K: (3, 3) float32 px.  poses: (P, 72) axis-angle.  betas: (P, 11).  transl: (P, 3) m.
        image_wh: (W, H) px.
    """

    key: str
    K: np.ndarray
    poses: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    image_wh: tuple[int, int] = IMAGE_WH


def camera_to_world(poses, transl, betas, R, T, body: ToyBody) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``formats.world_to_camera``: world-frame (poses, transl) for extrinsics (R, T).

    Args:
        poses: (P, 72) camera-frame axis-angle.  transl: (P, 3) m.  betas: (P, 11).
        R: (P, 3, 3) world-to-camera rotation.  T: (P, 3) m.
    """
    j0 = body.root_joint(betas).astype(np.float64)
    R = np.asarray(R, np.float64)
    poses = np.asarray(poses, np.float64).copy()
    poses[:, :3] = rotmat_to_axis_angle(R.transpose(0, 2, 1) @ axis_angle_to_rotmat(poses[:, :3]))
    transl_w = np.einsum("pji,pj->pi", R, np.asarray(transl, np.float64) + j0 - T) - j0
    return poses.astype(np.float32), transl_w.astype(np.float32)


def make_scene(rng: np.random.Generator, key: str, num_people: int, kid_beta: bool) -> Scene:
    W, H = IMAGE_WH
    K = np.array([[FOCAL_PX, 0, W / 2], [0, FOCAL_PX, H / 2], [0, 0, 1]], np.float32)
    z = rng.uniform(2.5, 7.0, num_people)
    transl = np.stack(
        [rng.uniform(-0.25, 0.25, num_people) * z, rng.uniform(-0.1, 0.3, num_people), z], 1
    )
    poses = rng.normal(0, 0.1, (num_people, 72))
    poses[:, 0] += np.pi  # standing person in the OpenCV camera frame (spec §8 #15)
    betas = np.zeros((num_people, 11))
    betas[:, :10] = rng.normal(0, 0.5, (num_people, 10))
    if kid_beta:
        betas[:, 10] = np.where(
            rng.random(num_people) < 0.3, rng.uniform(0.5, 1.0, num_people), 0.0
        )
    return Scene(
        key, K, poses.astype(np.float32), betas.astype(np.float32), transl.astype(np.float32)
    )


def render(scene: Scene, body: ToyBody, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 BGR: noise plus one filled rectangle per person over its projected
    vertices."""
    W, H = scene.image_wh
    image = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
    verts, _ = body(scene.poses, scene.betas, scene.transl)
    for i in np.argsort(-scene.transl[:, 2]):  # far to near
        uv = project(np.asarray(verts[i], np.float64), scene.K).astype(np.float32)
        x1, y1 = np.floor(uv.min(0)).astype(int)
        x2, y2 = np.ceil(uv.max(0)).astype(int)
        color = tuple(int(c) for c in rng.integers(100, 256, 3))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness=-1)
    return image


def keypoints(scene: Scene, body: ToyBody, joint_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame joints (P, J, 3) m and their pixels with visibility (P, J, 3) (1 inside the
    image)."""
    _, joints = body(scene.poses, scene.betas, scene.transl)
    if joint_ids is not None:
        joints = joints[:, joint_ids]
    uv = project(np.asarray(joints, np.float64), scene.K).astype(np.float32)
    W, H = scene.image_wh
    vis = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    return joints, np.concatenate([uv, vis[..., None].astype(np.float32)], -1)


def _extrinsics(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    yaw = axis_angle_to_rotmat([0.0, rng.uniform(-1, 1), 0.0])
    pitch = axis_angle_to_rotmat([rng.uniform(-0.2, 0.2), 0.0, 0.0])
    R = yaw @ pitch
    T = rng.normal(0, 1.0, 3)
    return np.repeat(R[None], n, 0).astype(np.float32), np.repeat(T[None], n, 0).astype(np.float32)


def _save_annots(path: Path, annots) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, annots=np.array(annots, dtype=object))


class Writer:
    """Writes the formats into ``out`` and records the manifest."""

    def __init__(self, out: Path, seed: int, images_per_format: int) -> None:
        self.out, self.n = Path(out), images_per_format
        self.rng = np.random.default_rng(seed)
        self.body = ToyBody()
        self.manifest: dict = {"seed": seed, "formats": {}}

    def scenes(self, prefix: str, kid_beta: bool, suffix: str = ".jpg") -> list[Scene]:
        return [
            make_scene(
                self.rng, f"{prefix}{i:06d}{suffix}", int(self.rng.integers(1, 4)), kid_beta
            )
            for i in range(self.n)
        ]

    def record(
        self, fmt: str, file: Path, reader: str, scenes: list[Scene], frame_truth=True, **kwargs
    ) -> None:
        root = file.parent / "images"
        for s in scenes:
            path = root / s.key
            path.parent.mkdir(parents=True, exist_ok=True)
            image = render(s, self.body, self.rng)
            cv2.imwrite(str(path), image)
        truth = {
            s.key: {
                "K": s.K.tolist(),
                "poses": s.poses.tolist(),
                "betas": s.betas.tolist(),
                "transl": s.transl.tolist(),
            }
            for s in scenes
        }
        self.manifest["formats"][fmt] = {
            "file": str(file.relative_to(self.out)),
            "reader": reader,
            "kwargs": kwargs,
            "image_root": str(root.relative_to(self.out)),
            "images": truth if frame_truth else {s.key: {"K": s.K.tolist()} for s in scenes},
        }

    # ------------------------------------------------------------------ camera-frame SMPL formats
    def dto_humans(self) -> None:
        for name, dataset, opt, prefix in (
            ("COCO_CHMR_SMPL_OPT.npz", "coco", True, "COCO_train2014_"),
            ("INSTA_CHMR_SMPL.npz", "insta", False, "insta-train/seq00/frame_"),
        ):
            scenes = self.scenes(prefix, kid_beta=opt)
            annots = {}
            for s in scenes:
                shape = s.betas if opt else s.betas[:, :10]
                cam = {
                    "focal": s.K[[0, 1], [0, 1]].astype(np.float32),
                    "princpt": s.K[:2, 2].astype(np.float32),
                }
                annots[s.key] = [
                    {
                        "smpl_param": {
                            "shape": shape[i],
                            "pose": s.poses[i],
                            "trans": s.transl[i],
                        },
                        "cam_param": cam,
                    }
                    for i in range(len(s.poses))
                ]
            file = self.out / f"dto_humans_{dataset}" / name
            _save_annots(file, annots)
            self.record(f"dto_humans_{dataset}", file, "dto_humans", scenes, dataset=dataset)

    def camerahmr(self) -> None:
        scenes = self.scenes("COCO_train2014_", kid_beta=False)
        rows = {k: [] for k in ("imgname", "pose_cam", "shape", "trans_cam", "cam_int", "gtkps")}
        for s in scenes:
            _, kp = keypoints(s, self.body, list(range(44)))
            for i in range(len(s.poses)):
                rows["imgname"].append(f"/data/coco/train2014/{s.key}")
                rows["pose_cam"].append(s.poses[i])
                rows["shape"].append(s.betas[i, :10])
                rows["trans_cam"].append(s.transl[i])
                rows["cam_int"].append(s.K)
                rows["gtkps"].append(kp[i])
        file = self.out / "camerahmr" / "coco-release.npz"
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, **{k: np.asarray(v) for k, v in rows.items()})
        self.record("camerahmr", file, "camerahmr", scenes, dataset="coco")

    def stage_a_and_dto_output(self) -> None:
        scenes = self.scenes("demo_", kid_beta=False)
        annots = {
            s.key: {
                "trans_cam": s.transl,
                "pose_cam": s.poses,
                "shape": s.betas[:, :10],
                "cam_int": np.repeat(s.K[None], len(s.poses), 0),
            }
            for s in scenes
        }
        file = self.out / "stage_a" / "demo.npz"
        _save_annots(file, annots)
        self.record("stage_a", file, "stage_a", scenes, dataset="coco")
        scenes = self.scenes("demo_", kid_beta=True)
        members = {
            s.key: np.array(
                {
                    "pose_cam": s.poses,
                    "shape": s.betas,
                    "trans_cam": s.transl,
                    "cam_int": np.repeat(s.K[None], len(s.poses), 0),
                    "is_released": np.ones(len(s.poses), bool),
                    "is_optimize": True,
                },
                dtype=object,
            )
            for s in scenes
        }
        file = self.out / "dto_output" / "demo_opt.npz"
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, **members)
        self.record("dto_output", file, "dto_output", scenes, dataset="coco")

    # ------------------------------------------------------------------ world-frame SMPL formats
    def agora(self) -> None:
        scenes = self.scenes("ag_", kid_beta=True, suffix=".png")
        annots = {}
        for s in scenes:
            n = len(s.poses)
            R, T = _extrinsics(self.rng, n + 1)
            pw, tw = camera_to_world(s.poses, s.transl, s.betas, R[:n], T[:n], self.body)
            smpl = [
                {
                    "betas": s.betas[i : i + 1],
                    "global_orient": pw[i, :3],
                    "body_pose": pw[i, 3:],
                    "transl": tw[i],
                }
                for i in range(n)
            ]
            # one extra invalid person that the reader must drop
            smpl.append(
                {
                    "betas": np.zeros((1, 10)),
                    "global_orient": np.zeros(3),
                    "body_pose": np.zeros(69),
                    "transl": np.zeros(3),
                }
            )
            annots[s.key] = {
                "isValid": [True] * n + [False],
                "cam_intrinsics": s.K,
                "cam_rot": R,
                "cam_trans": T,
                "smpl_gt": smpl,
                "kid": list(s.betas[:, 10] > 0) + [False],
            }
        file = self.out / "agora" / "annots_smpl_validation.npz"
        _save_annots(file, annots)
        self.record("agora", file, "agora", scenes)

    def bedlam(self) -> None:
        scenes = self.scenes("seq_000000/png/seq_000000_", kid_beta=False, suffix=".png")
        scenes[-1].key = scenes[-1].key.replace("seq_", "closeup_seq_")
        annots = {}
        for s in scenes:
            n = len(s.poses)
            R, T = _extrinsics(self.rng, n)
            pw, tw = camera_to_world(s.poses, s.transl, s.betas, R, T, self.body)
            annots[s.key] = {
                "cam_int": s.K,
                "cam_rot": list(R),
                "cam_trans": list(T),
                "shape": list(s.betas[:, :10]),
                "pose_world": list(pw),
                "trans_world": list(tw),
            }
        file = self.out / "bedlam" / "bedlam_smpl_validation_6fps.npz"
        _save_annots(file, annots)
        self.record("bedlam", file, "bedlam", scenes)

    def threedpw(self) -> None:
        scenes = self.scenes("imageFiles/downtown_walking_00/image_", kid_beta=False)
        annots = {}
        for s in scenes:
            n = len(s.poses)
            R, T = _extrinsics(self.rng, n)  # one camera per image
            pw, tw = camera_to_world(s.poses, s.transl, s.betas, R, T, self.body)
            annots[s.key] = {
                "betas": torch.from_numpy(s.betas[:, :10]),
                "global_orient": torch.from_numpy(pw[:, :3]),
                "body_pose": torch.from_numpy(pw[:, 3:]),
                "transl": torch.from_numpy(tw),
                "cam_intrinsics": s.K,
                "cam_rot": R[0],
                "cam_trans": T[0],
                "genders": ["m" if g else "f" for g in self.rng.random(n) < 0.5],
            }
        file = self.out / "3dpw" / "annots_smpl_test_genders.npz"
        _save_annots(file, annots)
        self.record("3dpw", file, "3dpw", scenes)

    def hi4d(self) -> None:
        scenes = self.scenes("pair00/dance00/images/4/", kid_beta=False)
        annots = {}
        for s in scenes:
            n = len(s.poses)
            R, T = _extrinsics(self.rng, n)
            pw, tw = camera_to_world(s.poses, s.transl, s.betas, R, T, self.body)
            annots[s.key] = [
                {
                    "focal": s.K[[0, 1], [0, 1]],
                    "princpt": s.K[:2, 2],
                    "cam_rot": R[i],
                    "cam_trans": T[i],
                    "global_orient": pw[i, :3],
                    "body_pose": pw[i, 3:],
                    "transl": tw[i],
                    "betas": s.betas[i, :10],
                    "genders": "male",
                }
                for i in range(n)
            ]
        file = self.out / "hi4d" / "hi4d_smpl_test.npz"
        _save_annots(file, annots)
        self.record("hi4d", file, "hi4d", scenes)

    # ------------------------------------------------------------------ keypoint-only formats
    def relative_human(self) -> None:
        scenes = self.scenes("rh_", kid_beta=True)
        annots = {}
        for s in scenes:
            _, kp = keypoints(s, self.body, CROWDPOSE14_FROM_J45)
            z = s.transl[:, 2]
            layer, order = np.zeros(len(z), int), np.argsort(z)
            for a, b in zip(
                order[:-1], order[1:], strict=True
            ):  # greedy layers: a gap >= 0.3 m starts a new one
                layer[b] = layer[a] + int(z[b] - z[a] >= 0.3)
            people = [
                {
                    "kp2d": kp[i].reshape(-1),
                    "depth_id": int(layer[i]),
                    "age": int(self.rng.integers(0, 4)),
                    "bbox": np.concatenate([kp[i, :, :2].min(0), kp[i, :, :2].max(0)]),
                }
                for i in range(len(z))
            ]
            people.append(
                {"kp2d": None, "depth_id": -1, "age": 0, "bbox": np.zeros(4)}
            )  # ignored by the reader
            annots[s.key] = people
        file = self.out / "rh" / "test_annots.npz"
        _save_annots(file, annots)
        self.record("rh", file, "rh", scenes)

    def mupots(self) -> None:
        scenes = self.scenes("TS1/img_", kid_beta=False)
        annots = {}
        for s in scenes:
            j3, kp = keypoints(s, self.body, list(range(17)))
            annots[s.key] = [
                {
                    "annot_2d": kp[i, :, :2],
                    "annot_3d": j3[i] * 1000.0,
                    "annot_3d_univ": j3[i] * 1000.0,
                    "vis": kp[i, :, 2] > 0,
                }
                for i in range(len(j3))
            ]
        file = self.out / "mupots" / "mupots_annots.npz"
        _save_annots(file, annots)
        self.record("mupots", file, "mupots", scenes)

    def panoptic(self) -> None:
        scenes = self.scenes("160422_haggling1/00_16/00_16_", kid_beta=False)
        annots = {}
        for s in scenes:
            j3, kp = keypoints(s, self.body, list(range(24)))
            annots[s.key] = {
                "kpts3d": np.concatenate([j3, kp[..., 2:]], -1),
                "kpts2d": kp,
                "width": s.image_wh[0],
                "height": s.image_wh[1],
            }
        file = self.out / "panoptic" / "annots_test.npz"
        _save_annots(file, annots)
        self.record("panoptic", file, "panoptic", scenes)

    def write_all(self) -> dict:
        for step in (
            self.dto_humans,
            self.camerahmr,
            self.stage_a_and_dto_output,
            self.agora,
            self.bedlam,
            self.threedpw,
            self.hi4d,
            self.relative_human,
            self.mupots,
            self.panoptic,
        ):
            step()
        (self.out / "manifest.json").write_text(json.dumps(self.manifest, indent=1))
        return self.manifest


def generate(out: str | Path, seed: int = 0, images_per_format: int = 3) -> dict:
    """Write every synthetic mini-dataset under ``out``; return the manifest (also in
    ``manifest.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return Writer(out, seed, images_per_format).write_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=3, help="images per format")
    args = parser.parse_args(argv)
    manifest = generate(args.out, args.seed, args.images)
    print(f"wrote {len(manifest['formats'])} formats to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
