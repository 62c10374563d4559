"""``MetricAwareHMR``: SAT-HMR + FoV head + kid-aware shape head, raw outputs only (spec §1).

SMPL decoding, thresholds and camera reconciliation live outside this module (``postprocess.py``,
``estimator.py``) so that ``forward`` stays exportable. The module provides the compute of each
stage; the data-dependent SAT orchestration between them is ``sat.encode`` (shared with training
and the staged runtime):

    images (B,3,Hp,Wp)
    │ forward_scale_map  static shapes: lvl1 tokens -> additional blocks -> scale map (B,G1h,G1w,2)
    │ [sat.encode]       per image masks, plans, hr patches            (sat.py)
    │ forward_lvl0       hr patches -> blocks[:get_map_layer] with the original CLS
    │ [sat.encode]       [CLS' ; lvl0' ; lvl1' ; lvl2], padded batch, memory positions
    │ forward_encoder    blocks[get_map_layer:] -> norm -> feature_proj -> memory
    └ forward_decoder    6-layer decoder -> camera -> iterative heads (decode_layers) -> pred_*
                         (B,Q,...)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mahmr_ros.geometry import rot6d_to_rotmat
from mahmr_ros.model import sat
from mahmr_ros.model.config import ModelConfig
from mahmr_ros.model.decoder import Decoder, sine_embed_2d
from mahmr_ros.model.encoder import ViTEncoder
from mahmr_ros.model.heads import (
    DEFAULT_FOV_RAD,
    MLP,
    camera_to_translation,
    clamp_fov,
    focal_from_fov,
)
from mahmr_ros.model.pretrained import upright_mean_pose

NUM_SMPL_JOINTS = 24


class MetricAwareHMR(nn.Module):
    """The MA-HMR network; attribute names reproduce the official state_dict keys (spec §2.2).

    Args:
        cfg: resolved config (build it with ``mahmr_ros.model.build_model``).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        C, D, Q = cfg.embed_dim, cfg.hidden_dim, cfg.num_queries
        F0 = cfg.grid_lvl0
        self.level_embed = nn.Parameter(torch.randn(3, D) * 0.02)
        self.encoder_cr_token = nn.Parameter(torch.randn(1, C) * 1e-6)
        self.encoder_pos_embeds = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(F0, F0, C), std=0.02)
        )
        # Buffers of the official checkpoint. cam_intrinsics / z-order maps are recomputed, never
        # read back.
        f0 = cfg.input_size / (2 * math.tan(DEFAULT_FOV_RAD / 2))
        half = cfg.input_size / 2
        self.register_buffer(
            "cam_intrinsics", torch.tensor([[f0, 0, half], [0, f0, half], [0, 0, 1.0]])
        )
        # Refinement start (spec §1.7): an upright, camera-facing body (root pi about x) until a
        # checkpoint or smpl_mean_params.npz replaces it (``pretrained.load_smpl_mean_params``),
        # never the identity root.
        self.register_buffer("mean_pose", upright_mean_pose())
        self.register_buffer("mean_shape", torch.zeros(cfg.num_betas))
        z = 1 << max(0, math.ceil(math.log2(cfg.grid_lvl1)))
        ys, xs = torch.meshgrid(torch.arange(z), torch.arange(z), indexing="ij")
        self.register_buffer("z_order_map", sat.morton_code(ys, xs))
        self.register_buffer("y_coords", ys.clone())
        self.register_buffer("x_coords", xs.clone())

        self.encoder = ViTEncoder(C, cfg.depth, cfg.num_heads, cfg.mlp_ratio, cfg.get_map_layer)
        self.enc_inter_norm = nn.LayerNorm(C, eps=1e-6)
        self.scale_head = MLP(C, C, 2, 4)
        p = cfg.patch_size
        self.encoder_patch_proj = nn.ModuleList(
            nn.Conv2d(3, C, kernel_size=p, stride=p) for _ in range(2)
        )
        if cfg.use_fov:
            self.fov_head = MLP(C, C, 1, 4)
            nn.init.xavier_uniform_(self.fov_head.layers[-1].weight, gain=0.1)
            nn.init.constant_(self.fov_head.layers[-1].bias, math.pi / 6)
        self.feature_proj = nn.Linear(C, D)

        self.bbox_embed = nn.ModuleList(MLP(D, D, 4, 3) for _ in range(cfg.dec_layers))
        self.decoder = Decoder(D, cfg.nheads, cfg.dec_layers, cfg.dim_feedforward, self.bbox_embed)
        self.pose_head = nn.ModuleList(
            MLP(D, D, NUM_SMPL_JOINTS * 6, 6) for _ in range(cfg.dec_layers)
        )
        self.shape_head = nn.ModuleList(MLP(D, D, cfg.num_betas, 5) for _ in range(cfg.dec_layers))
        self.cam_head = MLP(D, D // 2, 3, 3)
        self.conf_head = nn.Linear(D, 1)
        self.refpoint_embed = nn.Embedding(Q, 4)
        self.tgt_embed = nn.Embedding(Q, D)
        if cfg.use_dn:
            # Stage-1 / SAT-HMR denoising embedding (72 axis-angle + 10 betas -> D); unused at
            # inference.
            self.dn_enc = nn.Linear(NUM_SMPL_JOINTS * 3 + 10, D)

    # -------------------------------------------------------------------------------------- stages
    def lvl1_pos_embeds(self) -> Tensor:
        """(F1, F1, C) lvl1 position table: bicubic 92->46 resize of ``encoder_pos_embeds`` (spec
        §8 #9)."""
        table = self.encoder_pos_embeds.permute(2, 0, 1)[None]  # (1, C, F0, F0)
        F1 = self.cfg.grid_lvl1
        table = F.interpolate(
            table, size=(F1, F1), mode="bicubic", align_corners=False, antialias=False
        )
        return table[0].permute(1, 2, 0)

    def forward_scale_map(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 1 (static shapes): lvl1 tokens through the additional blocks, then the scale map.

        Args:
            images: (B, 3, Hp, Wp) float32 normalised network input.

        Returns:
            cls1: (B, C) CLS' after the additional blocks.
            lvl1: (B, G1h, G1w, C) lvl1' tokens.
            scale_map: (B, G1h, G1w, 2) sigmoid (person confidence, relative scale) per 28-px cell.
        """
        B, _, Hp, Wp = images.shape
        G1h, G1w = Hp // (2 * self.cfg.patch_size), Wp // (2 * self.cfg.patch_size)
        # 28-px cell -> 14 px by bilinear (align_corners False) is exactly a 2x2 average pool (spec
        # §1.5.1).
        x = self.encoder_patch_proj[1](F.avg_pool2d(images, 2))  # (B, C, G1h, G1w)
        x = x.flatten(2).transpose(1, 2)  # (B, G1h*G1w, C)
        C = x.shape[-1]
        x = x + self.lvl1_pos_embeds()[:G1h, :G1w].reshape(1, G1h * G1w, C)
        x = torch.cat([self.encoder_cr_token.expand(B, 1, C), x], dim=1)
        x = self.encoder.run_additional(x)
        lvl1 = x[:, 1:]
        scale_map = torch.sigmoid(self.scale_head(self.enc_inter_norm(lvl1)))
        return x[:, 0], lvl1.reshape(B, G1h, G1w, C), scale_map.reshape(B, G1h, G1w, 2)

    def forward_lvl0(
        self, patches: Tensor, pos_index: Tensor, patch_valid: Tensor | None = None
    ) -> Tensor:
        """High-resolution lvl0 tokens of the small-person cells (spec §1.5.4), a padded batch.

        Each hr cell gives 4 tokens (stride-14 conv on its full-resolution 28x28 patch) plus their
        92-grid position; they attend to each other and to the ORIGINAL CLS token only, through
        ``blocks[:gml]``.

        Args:
            patches: (B, M, 3, 28, 28) normalised full-resolution pixels of the hr cells.
            pos_index: (B, M, 4) int flat index y0 * F0 + x0 into ``encoder_pos_embeds``, per token
                in raster order (dy, dx) = (0,0), (0,1), (1,0), (1,1).
            patch_valid: (B, M) bool, False for padding (masked as keys); None = all real.

        Returns:
            (B, 4M, C) lvl0' tokens (rows of padding patches are garbage).
        """
        B, M = patches.shape[:2]
        x = self.encoder_patch_proj[0](patches.flatten(0, 1))  # (B*M, C, 2, 2)
        C = x.shape[1]
        x = x.permute(0, 2, 3, 1).reshape(B, 4 * M, C)  # raster (dy, dx) within each cell
        x = x + self.encoder_pos_embeds.reshape(-1, C)[pos_index.reshape(B, 4 * M)]
        x = torch.cat([self.encoder_cr_token.expand(B, 1, C), x], dim=1)
        mask = None
        if patch_valid is not None:
            valid = patch_valid[:, :, None].expand(B, M, 4).reshape(B, 4 * M)
            mask = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)[:, None, None, :]
        return self.encoder.run_blocks(x, 0, self.cfg.get_map_layer, mask)[:, 1:]

    def forward_encoder(
        self, tokens: Tensor, token_valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The remaining main blocks, final norm and ``feature_proj`` (spec §1.5.6-7).

        Args:
            tokens: (B, 1+N, C) [CLS' ; lvl0' ; lvl1' ; lvl2] per image, padded.
            token_valid: (B, 1+N) bool, False for padding (masked as keys); None = all real.

        Returns:
            memory (B, N, D) ``feature_proj(norm(patch tokens))``; cls_out (B, C) final CLS before
            the norm.
        """
        mask = None if token_valid is None else token_valid[:, None, None, :]
        x = self.encoder.run_blocks(tokens, self.cfg.get_map_layer, None, mask)
        return self.feature_proj(self.encoder.norm(x[:, 1:])), x[:, 0]

    def forward_tokens(self, image: Tensor, cls1: Tensor, lvl1: Tensor, plan: sat.TokenPlan):
        """One image's token pass without ``feature_proj`` (benchmarks, tests; ``forward`` uses
        sat.encode).

        Returns:
            feats (N, C) ``encoder.norm`` of the patch tokens; cls_out (C,); levels (N,); cells (N,
            2).
        """
        n0 = plan.hr_yx.shape[0]
        t0 = lvl1.new_zeros(0, lvl1.shape[-1])
        if n0:
            patches = sat.gather_hr_patches(image, plan.hr_yx, 2 * self.cfg.patch_size)[None]
            yx0 = sat.lvl0_cells(plan.hr_yx)
            t0 = self.forward_lvl0(
                patches, (yx0[..., 0] * self.cfg.grid_lvl0 + yx0[..., 1])[None]
            )[0]
        tokens, levels, yx = sat.assemble_tokens(cls1, t0, lvl1, plan)
        x = self.encoder.run_blocks(tokens[None], self.cfg.get_map_layer)[0]
        return self.encoder.norm(x[1:]), x[0], levels, yx

    def memory_pos(self, levels: Tensor, yx: Tensor) -> Tensor:
        """(N, D) decoder position encodings.

        PE2D((x+0.5)/F_l, (y+0.5)/F_l) + level_embed[l] with canvas F_l = 92/46/23 at 1288 (spec
        §1.5.7).
        """
        canvas = torch.tensor(
            [self.cfg.grid_lvl0, self.cfg.grid_lvl1, self.cfg.grid_lvl1 // 2],
            dtype=torch.float32,
            device=yx.device,
        )[levels]
        yx_norm = (yx.float() + 0.5) / canvas[:, None]
        pos = sine_embed_2d(yx_norm[:, 1], yx_norm[:, 0], self.cfg.hidden_dim // 2)
        return pos + self.level_embed[levels]

    def camera(self, cls_out: Tensor, resized_hw: Tensor) -> dict[str, Tensor]:
        """The network's pinhole camera per image (spec §1.8), float32.

        Args:
            cls_out: (B, C) final CLS tokens.
            resized_hw: (B, 2) (h', w') resized unpadded image size, pixels.

        Returns:
            ``pred_focal`` (B,) and ``pred_intrinsics`` (B, 3, 3) resized-image pixels (principal
            point (w'/2, h'/2), continuous coordinates); ``pred_fov`` (B,) radians with a FoV head.
        """
        B, device = cls_out.shape[0], cls_out.device
        hw = resized_hw.to(device, torch.float32)
        out: dict[str, Tensor] = {}
        if self.cfg.use_fov:
            fov = clamp_fov(self.fov_head(cls_out)[:, 0].float())
            focal = focal_from_fov(fov, hw[:, 0])
            out["pred_fov"] = fov
        else:
            # Fixed 60° camera on the input_size canvas (spec §1.8): the same focal for every
            # image.
            focal = torch.full(
                (B,), self.cfg.input_size / (2 * math.tan(DEFAULT_FOV_RAD / 2)), device=device
            )
        K = torch.zeros(B, 3, 3, device=device)
        K[:, 0, 0] = focal
        K[:, 1, 1] = focal
        K[:, 0, 2] = hw[:, 1] / 2
        K[:, 1, 2] = hw[:, 0] / 2
        K[:, 2, 2] = 1.0
        out.update(pred_focal=focal, pred_intrinsics=K)
        return out

    def decode_layers(
        self, hs: list[Tensor], boxes: list[Tensor], focal: Tensor, all_layers: bool = False
    ) -> list[dict[str, Tensor]]:
        """Iterative heads over the decoder layers (spec §1.7), geometry in float32.

        P6_l = P6_{l-1} + pose_head[l](h_l) and beta_l = beta_{l-1} + shape_head[l](h_l) from
        ``mean_pose`` / ``mean_shape``; confidence and camera from h_l alone. All pose/shape heads
        always run (the result accumulates); only the returned layers are turned into rotations and
        translations.

        Args:
            hs: per decoder layer (B, Q, D) outputs h_l.
            boxes: per decoder layer (B, Q, 4) boxes.
            focal: (B,) focal length, resized-image pixels.
            all_layers: decode every layer (training's auxiliary losses) instead of the last only.

        Returns:
            Per decoded layer: ``pred_confs`` (B, Q), ``pred_boxes`` (B, Q, 4), ``pred_rotmats``
            (B, Q, 24, 3, 3), ``pred_betas`` (B, Q, S), ``pred_cam`` (B, Q, 3), ``pred_transl`` (B,
            Q, 3) m.
        """
        B, Q = hs[0].shape[:2]
        pose_6d = self.mean_pose.float().expand(B, Q, -1)
        betas = self.mean_shape.float().expand(B, Q, -1)
        out = []
        for idx, h in enumerate(hs):  # all layers: the result accumulates (spec §1.7)
            pose_6d = pose_6d + self.pose_head[idx](h).float()
            betas = betas + self.shape_head[idx](h).float()
            if not all_layers and idx < len(hs) - 1:
                continue
            pred_cam, pred_transl = camera_to_translation(
                self.cam_head(h).float(), focal.float(), self.cfg.input_size
            )
            out.append(
                {
                    "pred_confs": torch.sigmoid(self.conf_head(h).float())[..., 0],
                    "pred_boxes": boxes[idx].float(),
                    "pred_rotmats": rot6d_to_rotmat(pose_6d.reshape(B, Q, NUM_SMPL_JOINTS, 6)),
                    "pred_betas": betas,
                    "pred_cam": pred_cam,
                    "pred_transl": pred_transl,
                }
            )
        return out

    def forward_decoder(
        self,
        memory: Tensor,
        pos: Tensor,
        memory_mask: Tensor | None,
        cls_out: Tensor,
        resized_hw: Tensor,
    ) -> dict[str, Tensor]:
        """Decoder, iterative heads, FoV and metric translation for the last decoder layer.

        Args:
            memory: (B, N, D) projected encoder features (padded rows are masked).
            pos: (B, N, D) position encodings.
            memory_mask: (B, 1, 1, N) bool, True = real token; None = no padding.
            cls_out: (B, C) final CLS tokens.
            resized_hw: (B, 2) (h', w') resized unpadded image size, pixels.

        Returns:
            The ``pred_*`` dict of ``forward`` (without ``sat``).
        """
        B = memory.shape[0]
        tgt = self.tgt_embed.weight[None].expand(B, -1, -1)
        refpoints = self.refpoint_embed.weight[None].expand(B, -1, -1)
        hs, boxes = self.decoder(tgt, refpoints, memory, pos, memory_mask)
        camera = self.camera(cls_out, resized_hw)
        return {**self.decode_layers(hs, boxes, camera["pred_focal"])[-1], **camera}

    # ------------------------------------------------------------------------------------- forward
    def check_input(self, images: Tensor) -> None:
        """Raise a clear error unless (B, 3, Hp, Wp) has sides multiple of 56 and long side <=
        input_size."""
        self.cfg.check_network_hw(images.shape[-2:])

    def encode(self, images: Tensor) -> sat.SatEncoding:
        """The SAT encoder on a padded batch (``sat.encode`` with this module's stages)."""
        self.check_input(images)
        return sat.encode(self, images)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the ViT blocks in the backward pass (activation checkpointing, training
        only)."""
        self.encoder.grad_checkpointing = bool(enable)

    def forward(self, images: Tensor, resized_hw: Tensor) -> dict:
        """Raw network outputs for a batch (api.md §1); each image is processed as if alone.

        Args:
            images: (B, 3, Hp, Wp) float32 normalised input (``preprocess``); Hp, Wp multiples of
                56, max(Hp, Wp) <= input_size.
            resized_hw: (B, 2) int (h', w'), the resized unpadded size of each image, pixels.

        Returns:
            dict with
            ``pred_confs`` (B, Q) probabilities; ``pred_boxes`` (B, Q, 4) (cx, cy, w, h) /
            input_size on the padded canvas; ``pred_rotmats`` (B, Q, 24, 3, 3) SMPL joint rotations
            (global orient in the camera frame); ``pred_betas`` (B, Q, num_betas); ``pred_cam`` (B,
            Q, 3) (s, t_x, t_y); ``pred_transl`` (B, Q, 3) metres, camera frame, SMPL-origin
            translation; ``pred_fov`` (B,) vertical FoV of the resized image, radians (only with a
            FoV head); ``pred_focal`` (B,) and ``pred_intrinsics`` (B, 3, 3) resized-image pixels,
            principal point (w'/2, h'/2) in continuous pixel coordinates; ``sat`` = {``hr_cells``
            (B, G1h, G1w) bool, ``pooled_groups`` (B, G1h/2, G1w/2) bool, ``num_tokens`` (B,)
            int64, ``scale_map`` (B, G1h, G1w, 2)}.
        """
        enc = self.encode(images)
        out = self.forward_decoder(
            enc.memory, enc.memory_pos, enc.memory_mask, enc.cls_out, resized_hw
        )
        out["sat"] = enc.outputs()
        return out
