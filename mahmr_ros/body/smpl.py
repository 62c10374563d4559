"""``SMPLBody``: the kid-aware SMPL layer of MA-HMR (spec mahmr_model §1.9) over the ``smplx``
package.

* Neutral SMPL with 10 shape components, plus the SMPL-A kid blend as the 11th when AGORA's
  ``smpl_kid_template.npy`` is given: ``shapedirs[..., 10] = (T_kid - mean_v(T_kid)) - T_smpl``,
  which is exactly ``smplx``'s ``age='kid'`` mode (used here, as in the official code).
* Joints (45) = 24 posed SMPL joints + 21 vertex joints (nose, eyes, ears, toes, heels, finger
  tips) in smplx's order; optional H36M-17 (``J_regressor_h36m_correct.npy``) and CrowdPose-14
  (``J_regressor_extra.npy``) regressors for evaluation.
* ``height(betas)``: the zero-pose (T-pose) height max_y - min_y over all vertices (spec dto §4).

The model files are the user's own (SMPL and AGORA licences); nothing is downloaded. ``.pkl`` files
are read without chumpy (``smpl_file``), ``.npz`` files are plain arrays.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from mahmr_ros.body.smpl_file import SMPLFileError, load_kid_template, load_smpl_arrays
from mahmr_ros.body.synthetic import VERTEX_JOINT_KEYS
from mahmr_ros.device import resolve_device
from mahmr_ros.types import MeshTopology

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar",
    "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
#: Names of the 45 output joints (``SMPLBody.forward``), SMPL-24 then the vertex joints.
JOINT_NAMES = SMPL_JOINT_NAMES + VERTEX_JOINT_KEYS
#: CrowdPose-14 from [24 SMPL joints ; 9 J_regressor_extra joints] (spec mahmr_model §1.9,
#: ``use_extra_j``).
CROWDPOSE14_FROM_SMPL_EXTRA = (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8, 27, 26)
NUM_SMPL_BETAS = 10


class SMPLBody:
    """Neutral SMPL (+ kid blend), metres, camera-frame outputs when given camera-frame rotations.

    Args:
        model_path: ``SMPL_NEUTRAL.pkl`` (official, chumpy inside is fine), its converted ``.npz``,
            or a synthetic SMPL-format file (tests).
        kid_template_path: AGORA ``smpl_kid_template.npy`` (V, 3); adds the 11th shape coefficient.
            None / "" = adult only (10 betas).
        device: torch device or ``"auto"``.
        h36m_regressor_path: optional ``J_regressor_h36m_correct.npy`` (17, V) for ``h36m_joints``.
        extra_regressor_path: optional ``J_regressor_extra.npy`` (9, V) for ``crowdpose_joints``.

    Raises:
        SMPLFileError: a file is missing or malformed (the message names it and says what was
            expected).
    """

    body_model = "smpl"

    def __init__(
        self,
        model_path: str | Path,
        kid_template_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        h36m_regressor_path: str | Path | None = None,
        extra_regressor_path: str | Path | None = None,
    ):
        self.model_path = Path(model_path)
        self.device = resolve_device(device, where="body.smpl")
        self.arrays = load_smpl_arrays(self.model_path)
        V = self.arrays["v_template"].shape[0]
        self.kid_template = None
        if kid_template_path:
            self.kid_template = load_kid_template(kid_template_path, V)
        self.num_betas = NUM_SMPL_BETAS + (self.kid_template is not None)
        with contextlib.redirect_stdout(
            io.StringIO()
        ):  # smplx prints a note about 10-component models
            self.layer = smplx.SMPL(
                model_path=str(self.model_path),
                data_struct=Struct(**self.arrays),
                kid_template_path=str(kid_template_path) if self.kid_template is not None else "",
                age="kid" if self.kid_template is not None else "adult",
                num_betas=NUM_SMPL_BETAS,
                vertex_ids=self._vertex_ids(V),
                create_betas=False,
                create_global_orient=False,
                create_body_pose=False,
                create_transl=False,
            ).to(self.device)
        self.layer.eval()
        self.faces = np.asarray(self.arrays["f"], dtype=np.int64)
        self.h36m_regressor = self._regressor(h36m_regressor_path, 17, V)
        self.extra_regressor = self._regressor(extra_regressor_path, 9, V)

    # -------------------------------------------------------------------------------------- set-up
    def _vertex_ids(self, num_vertices: int) -> dict[str, int]:
        ids = self.arrays.get("joint_vertex_ids")
        if ids is not None:
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
            if (
                ids.shape != (len(VERTEX_JOINT_KEYS),)
                or ids.min() < 0
                or ids.max() >= num_vertices
            ):
                raise SMPLFileError(
                    f"[body.smpl] {self.model_path}: joint_vertex_ids must be "
                    f"{len(VERTEX_JOINT_KEYS)} vertex indices < {num_vertices}, got {ids.tolist()}"
                )
            return dict(zip(VERTEX_JOINT_KEYS, ids.tolist()))
        if num_vertices != 6890:
            raise SMPLFileError(
                f"[body.smpl] {self.model_path}: {num_vertices} vertices but no "
                "'joint_vertex_ids' array; the default vertex joints need SMPL's 6890-vertex "
                "topology"
            )
        return {k: SMPLX_VERTEX_IDS["smplh"][k] for k in VERTEX_JOINT_KEYS}

    def _regressor(self, path, rows: int, num_vertices: int) -> torch.Tensor | None:
        if not path:
            return None
        path = Path(path)
        if not path.is_file():
            raise SMPLFileError(f"[body.smpl] joint regressor not found: {path}")
        try:
            reg = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise SMPLFileError(f"[body.smpl] {path}: not a readable .npy array ({err})") from err
        if reg.shape != (rows, num_vertices):
            raise SMPLFileError(
                f"[body.smpl] {path}: regressor is {reg.shape}, expected ({rows}, {num_vertices})"
            )
        return torch.as_tensor(reg, dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------------------------- queries
    @property
    def num_vertices(self) -> int:
        return int(self.arrays["v_template"].shape[0])

    @property
    def has_kid_blend(self) -> bool:
        return self.kid_template is not None

    @property
    def joint_names(self) -> list[str]:
        return list(JOINT_NAMES)

    def topology(self) -> MeshTopology:
        """Faces and joint names for ``/humans/meshes/topology``."""
        return MeshTopology(body_model="smpl", faces=self.faces, joint_names=self.joint_names)

    def _betas(self, betas, batch: int | None = None) -> torch.Tensor:
        """(P, S) betas on the device; a 10-dim input to a kid body gets a 0 kid blend."""
        b = torch.as_tensor(
            np.asarray(betas) if not torch.is_tensor(betas) else betas, dtype=torch.float32
        )
        if b.ndim not in (1, 2):
            raise ValueError(f"[body.smpl] betas must be (S,) or (P, S), got {tuple(b.shape)}")
        b = b.to(self.device).reshape(-1, b.shape[-1])
        if b.shape[-1] > self.num_betas:
            extra = b[:, self.num_betas :]
            if torch.any(extra != 0):
                raise ValueError(
                    f"[body.smpl] got {b.shape[-1]} betas but the body has {self.num_betas} (the "
                    "11th, the kid blend, needs kid_template_path)"
                )
            b = b[:, : self.num_betas]
        if b.shape[-1] < self.num_betas:
            b = torch.nn.functional.pad(b, (0, self.num_betas - b.shape[-1]))
        if batch is not None and b.shape[0] == 1 and batch != 1:
            b = b.expand(batch, -1)
        return b

    def forward(self, pose, betas, transl=None):
        """Posed meshes.

        Args:
            pose: (P, 24, 3, 3) rotation matrices, or (P, 72) / (P, 24, 3) axis-angle (radians);
                joint 0 is the global orientation (camera frame for network outputs).
            betas: (P, 10) or (P, 11) shape (kid blend at index 10; needs a kid template unless 0).
            transl: (P, 3) metres, SMPL-origin translation (NOT the pelvis), or None = 0.

        Returns:
            vertices (P, V, 3) and joints (P, 45, 3), metres; torch tensors on ``device``, or numpy
            float32 arrays when ``pose`` is a numpy array.
        """
        as_numpy = not torch.is_tensor(pose)
        pose_t = torch.as_tensor(np.asarray(pose) if as_numpy else pose, dtype=torch.float32).to(
            self.device
        )
        P = pose_t.shape[0]
        if pose_t.shape[1:] == (24, 3, 3):
            rot = True
        elif math.prod(pose_t.shape[1:]) == 72:
            rot, pose_t = False, pose_t.reshape(P, 72)
        else:
            raise ValueError(
                f"[body.smpl] pose must be (P, 24, 3, 3) or (P, 72), got {tuple(pose_t.shape)}"
            )
        b = self._betas(betas, P)
        if b.shape[0] != P:
            raise ValueError(f"[body.smpl] {P} poses but {b.shape[0]} betas")
        if P == 0:
            verts = torch.zeros(0, self.num_vertices, 3, device=self.device)
            joints = torch.zeros(0, len(JOINT_NAMES), 3, device=self.device)
        else:
            glob, body = (pose_t[:, :1], pose_t[:, 1:]) if rot else (pose_t[:, :3], pose_t[:, 3:])
            out = self.layer(betas=b, global_orient=glob, body_pose=body, pose2rot=not rot)
            verts, joints = out.vertices, out.joints
        if transl is not None:
            t = torch.as_tensor(
                np.asarray(transl) if not torch.is_tensor(transl) else transl, dtype=torch.float32
            )
            t = t.to(self.device).reshape(-1, 1, 3)
            verts, joints = verts + t, joints + t
        if as_numpy:
            return verts.detach().cpu().numpy(), joints.detach().cpu().numpy()
        return verts, joints

    __call__ = forward

    def shaped_vertices(self, betas) -> torch.Tensor:
        """(P, V, 3) zero-pose vertices v_template + shapedirs . beta (canonical frame, y up,
        metres)."""
        return self.layer.forward_shape(betas=self._betas(betas)).vertices

    def height(self, betas):
        """Zero-pose T-pose height max_y - min_y over all vertices, metres (spec dto §4).

        Args:
            betas: (P, S) or (S,) shape coefficients.

        Returns:
            (P,) heights: a torch tensor for tensor input, else a numpy float64 array (a float for
            1-D input).
        """
        y = self.shaped_vertices(betas)[..., 1]
        h = y.amax(dim=-1) - y.amin(dim=-1)
        if torch.is_tensor(betas):
            return h
        h = h.detach().cpu().double().numpy()
        return float(h[0]) if np.asarray(betas).ndim == 1 else h

    def h36m_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """(P, 17, 3) H36M joints regressed from (P, V, 3) vertices (needs
        ``h36m_regressor_path``)."""
        if self.h36m_regressor is None:
            raise ValueError(
                "[body.smpl] no H36M regressor: pass "
                "h36m_regressor_path=J_regressor_h36m_correct.npy"
            )
        return torch.einsum(
            "jv,pvc->pjc", self.h36m_regressor, torch.as_tensor(vertices, device=self.device)
        )

    def crowdpose_joints(self, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """(P, 14, 3) CrowdPose-14 joints from the 24 SMPL joints and the 9 extra regressed ones
        (§1.9)."""
        if self.extra_regressor is None:
            raise ValueError(
                "[body.smpl] no extra regressor: pass extra_regressor_path=J_regressor_extra.npy"
            )
        extra = torch.einsum(
            "jv,pvc->pjc", self.extra_regressor, torch.as_tensor(vertices, device=self.device)
        )
        both = torch.cat([torch.as_tensor(joints, device=self.device)[:, :24], extra], dim=1)
        return both[:, list(CROWDPOSE14_FROM_SMPL_EXTRA)]
