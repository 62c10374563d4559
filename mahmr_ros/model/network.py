"""``MetricAwareHMR``: SAT-HMR + FoV head + kid-aware shape head, raw outputs only (spec §1).

SMPL decoding, thresholds and camera reconciliation live outside this module (``postprocess.py``,
``estimator.py``) so that ``forward`` stays exportable. The forward pass is four stages, each its own method,
ready to be split into exportable graphs:

    images (B,3,Hp,Wp)
      │ 1. forward_scale_map     static shapes: lvl1 tokens -> additional blocks -> scale map (B,G1h,G1w,2)
      │ 2. sat.select_cells      data-dependent masks, per image (sat.py)
      │ 3. forward_tokens        per image: lvl0 pass, gather/pool, blocks[get_map_layer:], norm -> memory
      └ 4. forward_decoder       padded memory -> 6-layer decoder -> heads -> pred_* (B,Q,...)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mahmr_ros.model import sat
from mahmr_ros.model.config import ModelConfig
from mahmr_ros.model.decoder import Decoder, sine_embed_2d
from mahmr_ros.model.encoder import ViTEncoder
from mahmr_ros.model.heads import DEFAULT_FOV_RAD, MLP, camera_to_translation, clamp_fov, focal_from_fov
from mahmr_ros.model.rotation import rot6d_to_rotmat

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
        self.encoder_pos_embeds = nn.Parameter(nn.init.trunc_normal_(torch.empty(F0, F0, C), std=0.02))
        # Buffers of the official checkpoint. cam_intrinsics / z-order maps are recomputed, never read back.
        f0 = cfg.input_size / (2 * math.tan(DEFAULT_FOV_RAD / 2))
        half = cfg.input_size / 2
        self.register_buffer("cam_intrinsics", torch.tensor([[f0, 0, half], [0, f0, half], [0, 0, 1.0]]))
        identity_6d = torch.tensor([1.0, 0, 0, 1, 0, 0]).repeat(NUM_SMPL_JOINTS)
        self.register_buffer("mean_pose", identity_6d)
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
        self.encoder_patch_proj = nn.ModuleList(nn.Conv2d(3, C, kernel_size=p, stride=p) for _ in range(2))
        if cfg.use_fov:
            self.fov_head = MLP(C, C, 1, 4)
            nn.init.xavier_uniform_(self.fov_head.layers[-1].weight, gain=0.1)
            nn.init.constant_(self.fov_head.layers[-1].bias, math.pi / 6)
        self.feature_proj = nn.Linear(C, D)

        self.bbox_embed = nn.ModuleList(MLP(D, D, 4, 3) for _ in range(cfg.dec_layers))
        self.decoder = Decoder(D, cfg.nheads, cfg.dec_layers, cfg.dim_feedforward, self.bbox_embed)
        self.pose_head = nn.ModuleList(MLP(D, D, NUM_SMPL_JOINTS * 6, 6) for _ in range(cfg.dec_layers))
        self.shape_head = nn.ModuleList(MLP(D, D, cfg.num_betas, 5) for _ in range(cfg.dec_layers))
        self.cam_head = MLP(D, D // 2, 3, 3)
        self.conf_head = nn.Linear(D, 1)
        self.refpoint_embed = nn.Embedding(Q, 4)
        self.tgt_embed = nn.Embedding(Q, D)
        if cfg.use_dn:
            # Stage-1 / SAT-HMR denoising embedding (72 axis-angle + 10 betas -> D); unused at inference.
            self.dn_enc = nn.Linear(NUM_SMPL_JOINTS * 3 + 10, D)

    # ---------------------------------------------------------------------------------------------- stages
    def lvl1_pos_embeds(self) -> Tensor:
        """(F1, F1, C) lvl1 position table: bicubic 92->46 resize of ``encoder_pos_embeds`` (spec §8 #9)."""
        table = self.encoder_pos_embeds.permute(2, 0, 1)[None]  # (1, C, F0, F0)
        F1 = self.cfg.grid_lvl1
        table = F.interpolate(table, size=(F1, F1), mode="bicubic", align_corners=False, antialias=False)
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
        # 28-px cell -> 14 px by bilinear (align_corners False) is exactly a 2x2 average pool (spec §1.5.1).
        x = self.encoder_patch_proj[1](F.avg_pool2d(images, 2))  # (B, C, G1h, G1w)
        x = x.flatten(2).transpose(1, 2)  # (B, G1h*G1w, C)
        C = x.shape[-1]
        x = x + self.lvl1_pos_embeds()[:G1h, :G1w].reshape(1, G1h * G1w, C)
        x = torch.cat([self.encoder_cr_token.expand(B, 1, C), x], dim=1)
        x = self.encoder.run_additional(x)
        lvl1 = x[:, 1:]
        scale_map = torch.sigmoid(self.scale_head(self.enc_inter_norm(lvl1)))
        return x[:, 0], lvl1.reshape(B, G1h, G1w, C), scale_map.reshape(B, G1h, G1w, 2)

    def forward_tokens(self, image: Tensor, cls1: Tensor, lvl1: Tensor, plan: sat.TokenPlan):
        """Stage 3 for ONE image: build [CLS' ; lvl0' ; lvl1' ; lvl2], run the remaining blocks.

        Args:
            image: (3, Hp, Wp) normalised input.
            cls1: (C,) CLS' from stage 1.
            lvl1: (G1h, G1w, C) lvl1' tokens from stage 1.
            plan: the image's token plan (``sat.plan_tokens``).

        Returns:
            feats: (N, C) ``encoder.norm`` of the patch tokens.
            cls_out: (C,) final CLS before the norm (FoV-head input, spec §8 #8).
            levels: (N,) int64 token level 0/1/2.
            yx: (N, 2) int64 token cell (y, x) on its level's grid.
        """
        C = lvl1.shape[-1]
        gml = self.cfg.get_map_layer
        hr = plan.hr_yx
        n0 = hr.shape[0]
        dy = torch.tensor([0, 0, 1, 1], device=hr.device)
        dx = torch.tensor([0, 1, 0, 1], device=hr.device)
        yx0 = torch.stack(
            [(2 * hr[:, :1] + dy).flatten(), (2 * hr[:, 1:] + dx).flatten()], dim=-1
        )  # (4n0, 2)
        if n0:
            patches = sat.gather_hr_patches(image, hr, 2 * self.cfg.patch_size)  # (n0, 3, 28, 28)
            t0 = self.encoder_patch_proj[0](patches).permute(0, 2, 3, 1).reshape(4 * n0, C)  # raster (dy, dx)
            t0 = t0 + self.encoder_pos_embeds[yx0[:, 0], yx0[:, 1]]
            # lvl0 tokens attend to each other and the ORIGINAL CLS only (spec §1.5.4).
            seq = torch.cat([self.encoder_cr_token, t0], dim=0)[None]
            t0 = self.encoder.run_blocks(seq, 0, gml)[0, 1:]
        else:
            t0 = lvl1.new_zeros(0, C)
        t1 = lvl1[plan.lvl1_yx[:, 0], plan.lvl1_yx[:, 1]]
        t2 = sat.max_pool_groups(lvl1, plan.lvl2_yx)
        seq = torch.cat([cls1[None], t0, t1, t2], dim=0)[None]  # (1, 1+N, C)
        seq = self.encoder.run_blocks(seq, gml)[0]
        levels = torch.cat(
            [
                torch.zeros(4 * n0, dtype=torch.long, device=hr.device),
                torch.ones(len(t1), dtype=torch.long, device=hr.device),
                torch.full((len(t2),), 2, dtype=torch.long, device=hr.device),
            ]
        )
        yx = torch.cat([yx0, plan.lvl1_yx, plan.lvl2_yx], dim=0)
        return self.encoder.norm(seq[1:]), seq[0], levels, yx

    def memory_pos(self, levels: Tensor, yx: Tensor) -> Tensor:
        """(N, D) decoder position encodings.

        PE2D((x+0.5)/F_l, (y+0.5)/F_l) + level_embed[l] with canvas F_l = 92/46/23 at 1288 (spec §1.5.7).
        """
        canvas = torch.tensor(
            [self.cfg.grid_lvl0, self.cfg.grid_lvl1, self.cfg.grid_lvl1 // 2],
            dtype=torch.float32,
            device=yx.device,
        )[levels]
        yx_norm = (yx.float() + 0.5) / canvas[:, None]
        pos = sine_embed_2d(yx_norm[:, 1], yx_norm[:, 0], self.cfg.hidden_dim // 2)
        return pos + self.level_embed[levels]

    def forward_decoder(
        self, memory: Tensor, pos: Tensor, memory_mask: Tensor | None, cls_out: Tensor, resized_hw: Tensor
    ) -> dict[str, Tensor]:
        """Stage 4: decoder, iterative heads, FoV and metric translation.

        Args:
            memory: (B, N, D) projected encoder features (zero rows where padded).
            pos: (B, N, D) position encodings.
            memory_mask: (B, 1, 1, N) bool, True = real token; None = no padding.
            cls_out: (B, C) final CLS tokens.
            resized_hw: (B, 2) (h', w') resized unpadded image size, pixels.

        Returns:
            The ``pred_*`` dict of ``forward`` (without ``sat``).
        """
        B = memory.shape[0]
        cfg = self.cfg
        tgt = self.tgt_embed.weight[None].expand(B, -1, -1)
        refpoints = self.refpoint_embed.weight[None].expand(B, -1, -1)
        hs, boxes = self.decoder(tgt, refpoints, memory, pos, memory_mask)
        pose_6d = self.mean_pose.float().expand(B, cfg.num_queries, -1)
        betas = self.mean_shape.float().expand(B, cfg.num_queries, -1)
        for layer_idx, h in enumerate(hs):  # all layers: the result accumulates (spec §1.7)
            pose_6d = pose_6d + self.pose_head[layer_idx](h)
            betas = betas + self.shape_head[layer_idx](h)
        h = hs[-1]
        resized_hw = resized_hw.to(memory.device, torch.float32)
        out: dict[str, Tensor] = {}
        if cfg.use_fov:
            fov = clamp_fov(self.fov_head(cls_out)[:, 0])
            focal = focal_from_fov(fov, resized_hw[:, 0])
            out["pred_fov"] = fov
        else:
            # Fixed 60° camera on the 1288 canvas (spec §1.8): the same focal for every image.
            focal = torch.full(
                (B,), cfg.input_size / (2 * math.tan(DEFAULT_FOV_RAD / 2)), device=memory.device
            )
        pred_cam, pred_transl = camera_to_translation(self.cam_head(h), focal, cfg.input_size)
        intrinsics = torch.zeros(B, 3, 3, device=memory.device)
        intrinsics[:, 0, 0] = focal
        intrinsics[:, 1, 1] = focal
        intrinsics[:, 0, 2] = resized_hw[:, 1] / 2
        intrinsics[:, 1, 2] = resized_hw[:, 0] / 2
        intrinsics[:, 2, 2] = 1.0
        out.update(
            pred_confs=torch.sigmoid(self.conf_head(h))[..., 0],
            pred_boxes=boxes[-1],
            pred_rotmats=rot6d_to_rotmat(pose_6d.reshape(B, cfg.num_queries, NUM_SMPL_JOINTS, 6)),
            pred_betas=betas,
            pred_cam=pred_cam,
            pred_transl=pred_transl,
            pred_focal=focal,
            pred_intrinsics=intrinsics,
        )
        return out

    # --------------------------------------------------------------------------------------------- forward
    def forward(self, images: Tensor, resized_hw: Tensor) -> dict:
        """Raw network outputs for a batch (api.md §1); each image is processed as if alone.

        Args:
            images: (B, 3, Hp, Wp) float32 normalised input (``preprocess``); Hp, Wp multiples of 56,
                max(Hp, Wp) <= input_size.
            resized_hw: (B, 2) int (h', w'), the resized unpadded size of each image, pixels.

        Returns:
            dict with
            ``pred_confs`` (B, Q) probabilities; ``pred_boxes`` (B, Q, 4) (cx, cy, w, h) / input_size on the
            padded canvas; ``pred_rotmats`` (B, Q, 24, 3, 3) SMPL joint rotations (global orient in the camera
            frame); ``pred_betas`` (B, Q, num_betas); ``pred_cam`` (B, Q, 3) (s, t_x, t_y);
            ``pred_transl`` (B, Q, 3) metres, camera frame, SMPL-origin translation; ``pred_fov`` (B,)
            vertical FoV of the resized image, radians (only with a FoV head); ``pred_focal`` (B,) and
            ``pred_intrinsics`` (B, 3, 3) resized-image pixels, principal point (w'/2, h'/2) in continuous
            pixel coordinates; ``sat`` = {``hr_cells`` (B, G1h, G1w) bool, ``pooled_groups``
            (B, G1h/2, G1w/2) bool, ``num_tokens`` (B,) int64, ``scale_map`` (B, G1h, G1w, 2)}.
        """
        B, _, Hp, Wp = images.shape
        step = 4 * self.cfg.patch_size
        if Hp % step or Wp % step or max(Hp, Wp) > self.cfg.input_size:
            raise ValueError(
                f"[model] network input {Hp}x{Wp} must have both sides multiples of {step} and the long side "
                f"<= input_size={self.cfg.input_size} (use mahmr_ros.model.preprocess)"
            )
        cls1, lvl1, scale_map = self.forward_scale_map(images)
        masks = sat.select_cells(
            scale_map, self.cfg.conf_thresh, self.cfg.scale_thresh, self.cfg.sat_official_quirk
        )
        feats, cls_out, pos = [], [], []
        for b in range(B):
            plan = sat.plan_tokens(masks.hr_cells[b], masks.pooled_groups[b], masks.keep_lvl1[b])
            f, c, levels, yx = self.forward_tokens(images[b], cls1[b], lvl1[b], plan)
            feats.append(self.feature_proj(f))
            cls_out.append(c)
            pos.append(self.memory_pos(levels, yx))
        lengths = [len(f) for f in feats]
        memory = nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, Nmax, D)
        memory_pos = nn.utils.rnn.pad_sequence(pos, batch_first=True)
        memory_mask = None
        if min(lengths) != max(lengths):
            valid = (
                torch.arange(max(lengths), device=images.device)[None]
                < torch.tensor(lengths, device=images.device)[:, None]
            )
            memory_mask = valid[:, None, None, :]
        out = self.forward_decoder(memory, memory_pos, memory_mask, torch.stack(cls_out), resized_hw)
        out["sat"] = {
            "hr_cells": masks.hr_cells,
            "pooled_groups": masks.pooled_groups,
            "num_tokens": masks.num_tokens(),
            "scale_map": scale_map,
        }
        return out
