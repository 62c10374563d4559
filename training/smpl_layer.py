"""Differentiable, batched SMPL (+ kid blend) for losses, training data and evaluation.

There is ONE SMPL implementation in the project: ``mahmr_ros.body.SMPLBody`` (file reading without
chumpy, validation, smplx's ``age='kid'`` kid blend, the 45-joint vertex table). ``SMPLLayer`` only
exposes that body's smplx layer as an ``nn.Module`` (so ``.to(device)`` moves it with the
criterion) with the batched, rotation-matrix interface training needs, plus the closed-form
rest-pose root joint J0(beta) that the data loaders read for every world-frame annotation:

    J0(beta) = J_regressor[0] . (v_template + shapedirs . beta) = root_rest + root_dirs . beta

(a (3,) vector and a (3, S) matrix computed once, instead of a full shaped mesh per person).

Output joints follow the official 45-joint layout: 24 posed SMPL joints + 21 vertex joints (spec
§1.9).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mahmr_ros.body import SMPLBody
from mahmr_ros.body.smpl import CROWDPOSE14_FROM_SMPL_EXTRA

NUM_SMPL_JOINTS = 24
__all__ = ["CROWDPOSE14_FROM_SMPL_EXTRA", "NUM_SMPL_JOINTS", "SMPLLayer"]


class SMPLLayer(nn.Module):
    """Batched SMPL with the optional SMPL-A kid blend as shape component 10 (``SMPLBody``'s smplx
    layer).

    Args:
        model_path: SMPL-format model file (``SMPL_NEUTRAL.npz`` / ``.pkl``; see
            ``mahmr_ros.body``).
        kid_template_path: AGORA/SMIL kid template ``.npy`` (V, 3); adds the 11th shape column
            ``(T_kid - mean_v(T_kid)) - T_smpl`` (spec §1.9). Ignored for ``num_betas=10``.
        num_betas: shape components consumed by ``forward`` (10 or 11); 11 needs a kid template.
        body: an already built ``SMPLBody`` to wrap instead of reading files (its layer is shared).

    Raises:
        SMPLFileError (a ValueError): a file is missing or malformed (the message names it).
        ValueError: ``num_betas`` does not fit the files.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        kid_template_path: str | Path | None = None,
        num_betas: int = 11,
        body: SMPLBody | None = None,
    ) -> None:
        super().__init__()
        if num_betas not in (10, 11):
            raise ValueError(f"[training.smpl] num_betas must be 10 or 11, got {num_betas}")
        if body is None:
            if num_betas == 11 and not kid_template_path:
                raise ValueError(
                    "[training.smpl] num_betas=11 needs kid_template_path (smpl_kid_template.npy)"
                )
            body = SMPLBody(model_path, kid_template_path if num_betas == 11 else None)
        if body.num_betas != num_betas:
            raise ValueError(
                f"[training.smpl] the body has {body.num_betas} shape components, expected "
                f"{num_betas}"
            )
        self.num_betas = num_betas
        self.smpl = body.layer.float()
        self.faces = body.faces
        self.arrays = (
            body.arrays
        )  # plain numpy arrays of the model file (DTO's ShapeModel reads them)
        self.kid_template = body.kid_template
        with torch.no_grad():
            jr0 = self.smpl.J_regressor[0].float()  # (V,)
            self.register_buffer("root_rest", jr0 @ self.smpl.v_template.float())  # (3,)
            self.register_buffer(
                "root_dirs", torch.einsum("v,vcs->cs", jr0, self.smpl.shapedirs.float())
            )

    @property
    def num_vertices(self) -> int:
        return int(self.smpl.v_template.shape[0])

    @property
    def shapedirs(self) -> Tensor:
        """(V, 3, num_betas) shape blend shapes (the kid column last when num_betas = 11)."""
        return self.smpl.shapedirs

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
        rot = rotmats.reshape(N, NUM_SMPL_JOINTS, 3, 3).float()
        out = self.smpl(
            betas=betas.float(), global_orient=rot[:, :1], body_pose=rot[:, 1:], pose2rot=False
        )
        return out.vertices, out.joints

    def root_joint(self, betas: Tensor | np.ndarray) -> Tensor:
        """(N, num_betas) -> (N, 3) metres: the zero-pose root joint J0(beta) (world->camera, spec
        §4.5)."""
        b = torch.as_tensor(betas, dtype=torch.float32, device=self.root_rest.device)
        return self.root_rest + b[:, : self.num_betas] @ self.root_dirs.T
