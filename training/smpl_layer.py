"""Differentiable, batched SMPL (+ kid blend) for losses and evaluation, on ``smplx.lbs``.

Training needs SMPL inside the autograd graph for a whole batch of matched queries, fed with rotation
matrices straight from the 6D head (spec §1.7), so this is a thin ``nn.Module`` over smplx's pure ``lbs``
function rather than the inference-side ``mahmr_ros.body.SMPLBody``. It reads the same user-supplied files:
an SMPL-format ``.npz`` or ``.pkl`` of plain numpy arrays (``v_template``, ``f``, ``J_regressor``,
``weights``, ``kintree_table``, ``shapedirs``, ``posedirs``; chumpy pickles must be converted first) and the
optional AGORA kid template ``.npy`` (spec §1.9).

Output joints follow the official 45-joint layout: 24 posed SMPL joints + 21 vertex joints (spec §1.9).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import lbs
from torch import Tensor, nn

NUM_SMPL_JOINTS = 24
#: smplx's default vertex ids of the 21 extra joints on the 6890-vertex SMPL mesh (spec §1.9 order).
SMPL_VERTEX_JOINT_IDS = (
    332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133,
)  # fmt: skip
#: CrowdPose-14 from [24 SMPL joints ; 9 J_regressor_extra joints] (spec §1.9 ``use_extra_j``): L/R shoulder,
#: elbow, wrist, hip, knee, ankle, head top (extra #3), neck (extra #2).
CROWDPOSE14_FROM_SMPL_EXTRA = [16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8, 27, 26]
_REQUIRED = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")


def read_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The SMPL arrays of ``path`` (``.npz`` or a ``.pkl`` of plain numpy arrays).

    Raises:
        FileNotFoundError / ValueError naming the file and what is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"[training.smpl] SMPL model file not found: {path} (expected SMPL_NEUTRAL.npz/.pkl; convert the "
            "official chumpy .pkl with `mahmr_ros convert-smpl`)"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    else:
        try:
            with open(path, "rb") as file:
                arrays = pickle.load(file, encoding="latin1")
        except ModuleNotFoundError as error:  # chumpy objects inside
            raise ValueError(
                f"[training.smpl] {path} holds {error.name} objects; convert it to a plain .npz first"
            ) from error
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"[training.smpl] {path} lacks SMPL arrays {missing}")
    out = {}
    for key, value in arrays.items():
        if hasattr(value, "toarray"):  # scipy sparse J_regressor in the official files
            value = value.toarray()
        out[key] = np.asarray(value)
    return out


class SMPLLayer(nn.Module):
    """Batched SMPL with the optional SMPL-A kid blend as shape component 10.

    Args:
        model_path: SMPL-format model file (see the module docstring).
        kid_template_path: AGORA/SMIL kid template ``.npy`` (V, 3); adds the 11th shape column
            ``(T_kid - mean_v(T_kid)) - T_smpl`` (spec §1.9). None = 10 shape components (adult SMPL).
        num_betas: shape components consumed by ``forward`` (10 or 11); 11 needs a kid template.
    """

    def __init__(
        self, model_path: str | Path, kid_template_path: str | Path | None = None, num_betas: int = 11
    ) -> None:
        super().__init__()
        arrays = read_smpl_arrays(model_path)
        v_template = arrays["v_template"].astype(np.float32)
        V = len(v_template)
        shapedirs = arrays["shapedirs"].astype(np.float32)[:, :, :10]
        if num_betas == 11:
            if kid_template_path is None:
                raise ValueError(
                    "[training.smpl] num_betas=11 needs kid_template_path (smpl_kid_template.npy)"
                )
            kid = np.load(kid_template_path).astype(np.float32)
            if kid.shape != (V, 3):
                raise ValueError(f"[training.smpl] {kid_template_path}: shape {kid.shape}, expected ({V}, 3)")
            kid_dir = (kid - kid.mean(0)) - v_template
            shapedirs = np.concatenate([shapedirs, kid_dir[:, :, None]], axis=2)
        elif num_betas != 10:
            raise ValueError(f"[training.smpl] num_betas must be 10 or 11, got {num_betas}")
        if "joint_vertex_ids" in arrays:
            vertex_ids = arrays["joint_vertex_ids"].astype(np.int64)
        elif V == 6890:
            vertex_ids = np.asarray(SMPL_VERTEX_JOINT_IDS, np.int64)
        else:
            raise ValueError(f"[training.smpl] {model_path}: {V} vertices and no 'joint_vertex_ids' array")
        posedirs = arrays["posedirs"].astype(np.float32).reshape(-1, arrays["posedirs"].shape[-1]).T
        self.num_betas = num_betas
        self.register_buffer("v_template", torch.from_numpy(v_template))
        self.register_buffer("shapedirs", torch.from_numpy(np.ascontiguousarray(shapedirs)))
        self.register_buffer("posedirs", torch.from_numpy(np.ascontiguousarray(posedirs)))  # (207, V*3)
        self.register_buffer("J_regressor", torch.from_numpy(arrays["J_regressor"].astype(np.float32)))
        self.register_buffer("lbs_weights", torch.from_numpy(arrays["weights"].astype(np.float32)))
        parents = arrays["kintree_table"][0].astype(np.int64).copy()
        parents[0] = -1
        self.register_buffer("parents", torch.from_numpy(parents))
        self.register_buffer("vertex_joint_ids", torch.from_numpy(vertex_ids))
        self.faces = arrays["f"].astype(np.int64)

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def forward(self, rotmats: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """Posed body at the SMPL origin (add the translation outside).

        Args:
            rotmats: (N, 24, 3, 3) joint rotations, joint 0 = global orient (camera frame).
            betas: (N, num_betas) shape; extra columns beyond ``num_betas`` are an error.

        Returns:
            vertices (N, V, 3) and joints (N, 45, 3), metres, untranslated.
        """
        N = rotmats.shape[0]
        if betas.shape[-1] != self.num_betas:
            raise ValueError(
                f"[training.smpl] betas have {betas.shape[-1]} entries, expected {self.num_betas}"
            )
        if N == 0:
            return rotmats.new_zeros(0, self.num_vertices, 3), rotmats.new_zeros(0, 45, 3)
        dtype = self.v_template.dtype
        verts, joints = lbs(
            betas.to(dtype),
            rotmats.reshape(N, NUM_SMPL_JOINTS, 3, 3).to(dtype),
            self.v_template,
            self.shapedirs,
            self.posedirs,
            self.J_regressor,
            self.parents,
            self.lbs_weights,
            pose2rot=False,
        )
        joints = torch.cat([joints, verts[:, self.vertex_joint_ids]], dim=1)
        return verts, joints

    def root_joint(self, betas: Tensor) -> Tensor:
        """(N, num_betas) -> (N, 3) metres: the zero-pose root joint J0(beta) (world->camera, spec §4.5)."""
        v_shaped = self.v_template + torch.einsum("nl,vcl->nvc", betas.to(self.v_template), self.shapedirs)
        return torch.einsum("v,nvc->nc", self.J_regressor[0], v_shaped)
