"""What the training data code needs from a body model, and a rigid toy body for tests and
synthetic data.

The loaders need three things from SMPL: the rest-pose root joint J0(beta) (world→camera, spec
§4.5), the camera-frame joints (GT boxes, §4.5) and vertices plus faces (scale map, §4.6).
``BodyModel`` names exactly that, so ``mahmr_ros.body.SMPLBody`` (through a thin adapter) and
``ToyBody`` are interchangeable.

``ToyBody`` is NOT a human body model: it is a rigid, box-shaped mesh with 45 joints placed like
SMPL's (y up, metres, about 1.7 m tall) that follows SMPL's transform semantics exactly,
``x = R_glob (x_rest - J0) + J0 + t``, and ignores the body pose. Its J0 depends linearly on beta
so that world→camera conversion is exercised for real.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
import trimesh

from mahmr_ros.geometry import axis_angle_to_rotmat

NUM_JOINTS = 45

# Rest positions of the 24 SMPL joints of the toy body (canonical frame: y up, metres, SMPL-like
# layout).
_SMPL24_REST = np.array(
    [
        [0.00, -0.22, 0.02],
        [0.07, -0.31, 0.01],
        [-0.07, -0.31, 0.01],
        [0.00, -0.11, -0.01],
        [0.10, -0.69, 0.01],
        [-0.10, -0.69, 0.01],
        [0.00, 0.03, 0.02],
        [0.09, -1.09, -0.03],
        [-0.09, -1.09, -0.03],
        [0.00, 0.09, 0.03],
        [0.11, -1.15, 0.09],
        [-0.11, -1.15, 0.09],
        [0.00, 0.30, 0.00],
        [0.08, 0.21, 0.00],
        [-0.08, 0.21, 0.00],
        [0.00, 0.36, 0.05],
        [0.18, 0.23, -0.01],
        [-0.18, 0.23, -0.01],
        [0.44, 0.22, -0.03],
        [-0.44, 0.22, -0.03],
        [0.70, 0.23, -0.03],
        [-0.70, 0.23, -0.03],
        [0.78, 0.22, -0.04],
        [-0.78, 0.22, -0.04],
    ],
    np.float32,
)
# The 21 vertex joints (nose, eyes, ears, feet, fingers) of the toy body: copies of nearby SMPL-24
# joints with small offsets, so the 45-joint array has SMPL's layout.
_EXTRA_PARENTS = [15, 15, 15, 15, 15, 10, 10, 7, 11, 11, 8, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23]


def _rest_joints() -> np.ndarray:
    extra = _SMPL24_REST[_EXTRA_PARENTS] + np.linspace(-0.02, 0.02, len(_EXTRA_PARENTS))[:, None]
    return np.concatenate([_SMPL24_REST, extra.astype(np.float32)])


@runtime_checkable
class BodyModel(Protocol):
    """The body-model interface of ``training.data`` (numpy in, numpy out, camera or world frame).

    Attributes:
        faces: (F, 3) int64 triangle vertex indices.
    """

    faces: np.ndarray

    def root_joint(self, betas: np.ndarray) -> np.ndarray:
        """(P, 11) betas -> (P, 3) metres, root joint of the zero-pose untranslated body."""
        ...

    def __call__(
        self, poses: np.ndarray, betas: np.ndarray, transl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P, 72) axis-angle, (P, 11), (P, 3) m -> vertices (P, V, 3), joints (P, 45, 3), m, same
        frame."""
        ...


class ToyBody:
    """Rigid box body with SMPL transform semantics (tests and synthetic data only; see the module
    docstring).

    Args:
        subdivisions: loop-free midpoint subdivisions of the 12-triangle box (V = 8, 26, 98, ...
            vertices).
    """

    def __init__(self, subdivisions: int = 2) -> None:
        mesh = trimesh.creation.box(extents=(0.5, 1.7, 0.3))
        vertices, faces = mesh.vertices, mesh.faces
        for _ in range(subdivisions):
            vertices, faces = trimesh.remesh.subdivide(vertices, faces)
        self.rest_vertices = (vertices + np.array([0.0, -0.30, 0.0])).astype(
            np.float32
        )  # feet at -1.15 m
        self.faces = np.asarray(faces, np.int64)
        self.rest_joints = _rest_joints()

    def _shape_offset(self, betas: np.ndarray) -> np.ndarray:
        # beta 0 moves the whole body up by 2 cm per unit: enough to make J0 depend on beta.
        betas = np.asarray(betas, np.float32).reshape(-1, betas.shape[-1])
        return np.stack(
            [np.zeros(len(betas)), 0.02 * betas[:, 0], np.zeros(len(betas))], 1
        ).astype(np.float32)

    def root_joint(self, betas: np.ndarray) -> np.ndarray:
        """(P, 11) betas -> (P, 3) metres, the rest-pose root joint J0(beta)."""
        return self.rest_joints[0][None] + self._shape_offset(betas)

    def __call__(
        self, poses: np.ndarray, betas: np.ndarray, transl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Place the body: x = R_glob (x_rest + offset - J0) + J0 + t (SMPL semantics, body pose
        ignored).

        Args:
            poses: (P, 72) float32 axis-angle; only the global orient (first 3) is used.
            betas: (P, 11) float32.
            transl: (P, 3) float32 metres.

        Returns:
            vertices (P, V, 3) and joints (P, 45, 3) float32 metres, in the frame of
            ``poses``/``transl``.
        """
        poses = np.asarray(poses, np.float64).reshape(-1, 72)
        R = axis_angle_to_rotmat(poses[:, :3])  # (P, 3, 3)
        offset = self._shape_offset(betas)[:, None]  # (P, 1, 3)
        j0 = self.root_joint(betas)[:, None]  # (P, 1, 3)
        t = np.asarray(transl, np.float64).reshape(-1, 1, 3)

        def place(rest):
            local = rest[None] + offset - j0  # (P, N, 3) about the root joint
            return (np.einsum("pij,pnj->pni", R, local) + j0 + t).astype(np.float32)

        return place(self.rest_vertices), place(self.rest_joints)


def gender_key(gender: str | None) -> str:
    """'m' / 'male' / 'M' -> "male", 'f' / 'female' -> "female", anything else (or None) ->
    "neutral"."""
    g = str(gender or "").strip().lower()
    return "male" if g.startswith("m") else "female" if g.startswith("f") else "neutral"


class GenderedBody:
    """Neutral SMPL plus optional male / female models, picked per person by the annotation's
    gender.

    The official GT meshes of 3DPW and Hi4D come from the gendered SMPL models (spec §4.5); the
    network itself always predicts with the neutral (kid-aware) body. Annotations without genders
    use the neutral one.

    Args:
        neutral: the neutral ``SMPLLayer`` (or any ``BodyModel``-like layer).
        male, female: gendered layers with the same topology, or None.
        allow_neutral_gt: use the neutral body for gendered people when a gendered model is missing
            (not the official protocol) instead of raising.
    """

    def __init__(self, neutral, male=None, female=None, allow_neutral_gt: bool = False) -> None:
        self.layers = {"neutral": neutral, "male": male, "female": female}
        self.allow_neutral_gt = allow_neutral_gt
        self.faces = neutral.faces
        self.num_betas = neutral.num_betas

    @property
    def neutral(self):
        return self.layers["neutral"]

    def keys(self, genders: list[str] | None, num_people: int) -> list[str]:
        """Which model each person uses; raises for a gendered person without that model (see
        Args)."""
        if genders is None:
            return ["neutral"] * num_people
        keys = [gender_key(g) for g in genders]
        missing = sorted({k for k in keys if self.layers.get(k) is None})
        if missing and not self.allow_neutral_gt:
            raise ValueError(
                f"[training.data] people annotated {missing} but no SMPL_{missing[0].upper()} "
                "model given: the official GT of gendered datasets (3DPW, Hi4D) uses the "
                "gendered SMPL models; set body.smpl_male / body.smpl_female (training) or "
                "--smpl-male / --smpl-female (eval), or allow_neutral_gt"
            )
        return [k if self.layers.get(k) is not None else "neutral" for k in keys]

    def root_joint(self, betas: np.ndarray, genders: list[str] | None = None) -> np.ndarray:
        """(P, S) -> (P, 3) metres: rest-pose root joint of each person's model."""
        betas = np.asarray(betas, np.float32)
        out = np.zeros((len(betas), 3), np.float64)
        keys = np.asarray(self.keys(genders, len(betas)))
        for key in set(keys.tolist()):
            sel = keys == key
            out[sel] = np.asarray(self.layers[key].root_joint(betas[sel]), np.float64)
        return out

    def __call__(self, rotmats, betas, genders: list[str] | None = None):
        """(P, 24, 3, 3), (P, S) tensors -> vertices (P, V, 3), joints (P, 45, 3), each person's
        model."""
        keys = self.keys(genders, len(betas))
        if len(set(keys)) <= 1:
            return self.layers[keys[0] if keys else "neutral"](rotmats, betas)
        verts, joints = [None] * len(keys), [None] * len(keys)
        for key in set(keys):
            idx = [i for i, k in enumerate(keys) if k == key]
            v, j = self.layers[key](rotmats[idx], betas[idx])
            for n, i in enumerate(idx):
                verts[i], joints[i] = v[n], j[n]
        return torch.stack(verts), torch.stack(joints)
