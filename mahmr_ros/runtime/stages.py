"""The network split into four exportable stages with static or profile-bounded shapes.

SAT (spec §1.5) makes the token count data-dependent, which TensorRT cannot express inside one
graph. The data-dependent part (thresholds, index lists, gathers, max-pooling of groups) therefore
runs on the host (``staged.py``, torch ops on the stage tensors' device) and the heavy parts become
four graphs, each built by composition over the submodules of a loaded ``MetricAwareHMR`` (weights
are shared, never copied):

    images (1,3,Hp,Wp)
      │ ScaleMapStage   static: lvl1 tokens -> additional blocks -> cls1 (1,C), lvl1 (1,G1h,G1w,C),
      │                         scale_map (1,G1h,G1w,2)
      │ [host]          select cells, gather hr patches, pad M to a bucket
      │ Lvl0Stage       dynamic M (hr cells): patches (M,3,28,28) -> blocks[0:gml]
                        -> lvl0 tokens (4M,C)
      │ [host]          [CLS' ; lvl0 ; kept lvl1 ; lvl2 max-pool], pad N to a bucket
      │ EncoderStage    dynamic T = 1+N: blocks[gml:] + norm + feature_proj
                        -> memory (1,N,D), cls_out (1,C)
      │ [host]          memory positions (sine + level embedding)
      └ DecoderStage    dynamic N: decoder + heads -> pred_* (1,Q,...)

Padding is masked as attention *keys* (bool masks, True = real), so real tokens see exactly the
eager sequence; padded rows produce values that are never read. Every stage takes one image (batch
dim 1 or none): the host loops over a batch, as the eager model does for everything after the scale
map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mahmr_ros.model.network import MetricAwareHMR

# Stage names in execution order; also the ONNX / engine file stems.
STAGE_NAMES = ("scale_map", "lvl0", "encoder", "decoder")

# Output names of the decoder stage, in graph order (pred_fov only with a FoV head).
DECODER_OUTPUTS = (
    "pred_confs",
    "pred_boxes",
    "pred_rotmats",
    "pred_betas",
    "pred_cam",
    "pred_transl",
    "pred_focal",
    "pred_intrinsics",
    "pred_fov",
)


def _key_mask(valid: Tensor | None) -> Tensor | None:
    """(B, N) bool key validity -> (B, 1, 1, N) SDPA mask (True = may attend); None stays None."""
    return None if valid is None else valid[:, None, None, :]


class ScaleMapStage(nn.Module):
    """Stage 1, static shapes: lvl1 tokens through the additional blocks, then the scale map (spec
    §1.5.1-2).

    The lvl1 position table (bicubic 92 -> 46 resize of ``encoder_pos_embeds``) is computed once
    here, as the official code caches it at the first eval forward: build stages AFTER loading the
    weights.

    Args:
        model: the network whose submodules are reused.
    """

    def __init__(self, model: MetricAwareHMR):
        super().__init__()
        self.cell_px = 2 * model.cfg.patch_size
        self.patch_proj = model.encoder_patch_proj[1]
        self.cls_token = model.encoder_cr_token
        self.blocks = model.encoder.additional_blocks
        self.inter_norm = model.enc_inter_norm
        self.scale_head = model.scale_head
        with torch.no_grad():
            self.register_buffer(
                "pos_lvl1", model.lvl1_pos_embeds().detach().clone(), persistent=False
            )

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, 3, Hp, Wp) input -> cls1 (B, C), lvl1 (B, G1h, G1w, C), scale_map (B, G1h, G1w,
        2)."""
        B, _, Hp, Wp = images.shape
        G1h, G1w = Hp // self.cell_px, Wp // self.cell_px
        # 28-px cell -> 14 px by bilinear (align_corners False) is exactly a 2x2 average pool (spec
        # §1.5.1).
        x = self.patch_proj(F.avg_pool2d(images, 2)).flatten(2).transpose(1, 2)  # (B, G1h*G1w, C)
        C = x.shape[-1]
        x = x + self.pos_lvl1[:G1h, :G1w].reshape(1, G1h * G1w, C)
        x = torch.cat([self.cls_token.expand(B, 1, C), x], dim=1)
        for block in self.blocks:
            x = block(x)
        lvl1 = x[:, 1:]
        scale_map = torch.sigmoid(self.scale_head(self.inter_norm(lvl1)))
        return x[:, 0], lvl1.reshape(B, G1h, G1w, C), scale_map.reshape(B, G1h, G1w, 2)


class Lvl0Stage(nn.Module):
    """Stage 2, dynamic M: high-resolution tokens of the small-person cells (spec §1.5.4).

    Each hr lvl1 cell gives 4 lvl0 tokens (stride-14 conv on its full-resolution 28x28 patch) plus
    their 92-grid position. The tokens and the ORIGINAL CLS token run through
    ``blocks[0:get_map_layer]``.

    Args:
        model: the network whose submodules are reused.
    """

    def __init__(self, model: MetricAwareHMR):
        super().__init__()
        self.patch_proj = model.encoder_patch_proj[0]
        self.cls_token = model.encoder_cr_token
        self.pos_embeds = model.encoder_pos_embeds
        self.blocks = model.encoder.blocks[: model.cfg.get_map_layer]

    def forward(
        self, patches: Tensor, pos_index: Tensor, patch_valid: Tensor | None = None
    ) -> Tensor:
        """High-res tokens of one image.

        Args:
            patches: (M, 3, 28, 28) normalised full-resolution pixels of the hr cells (padding:
                any).
            pos_index: (M, 4) int32/int64 flat index y0 * F0 + x0 into the 92x92 position table,
                per token in raster order (dy, dx) = (0,0), (0,1), (1,0), (1,1).
            patch_valid: (M,) bool, False for padding patches (masked as keys); None = all real.

        Returns:
            (4M, C) lvl0' tokens (rows of padding patches are garbage).
        """
        M = patches.shape[0]
        x = self.patch_proj(patches)  # (M, C, 2, 2)
        C = x.shape[1]
        x = x.permute(0, 2, 3, 1).reshape(4 * M, C)  # raster (dy, dx) within each cell
        table = self.pos_embeds.reshape(-1, C)  # (F0*F0, C)
        x = x + torch.index_select(table, 0, pos_index.reshape(4 * M))
        x = torch.cat([self.cls_token, x], dim=0)[None]  # (1, 1+4M, C)
        mask = None
        if patch_valid is not None:
            token_valid = patch_valid[:, None].expand(M, 4).reshape(1, 4 * M)
            mask = _key_mask(torch.cat([torch.ones_like(token_valid[:, :1]), token_valid], dim=1))
        for block in self.blocks:
            x = block(x, mask)
        return x[0, 1:]


class EncoderStage(nn.Module):
    """Stage 3, dynamic T = 1 + N: the remaining main blocks, final norm and ``feature_proj`` (spec
    §1.5.6-7).

    Args:
        model: the network whose submodules are reused.
    """

    def __init__(self, model: MetricAwareHMR):
        super().__init__()
        self.blocks = model.encoder.blocks[model.cfg.get_map_layer :]
        self.norm = model.encoder.norm
        self.feature_proj = model.feature_proj

    def forward(self, tokens: Tensor, token_valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """[CLS' ; lvl0' ; lvl1' ; lvl2] of one image -> decoder memory and the final CLS.

        Args:
            tokens: (1, T, C) with the CLS' token first; T = 1 + N (padded).
            token_valid: (1, T) bool, False for padding (masked as keys); None = all real.

        Returns:
            memory: (1, T-1, D) ``feature_proj(norm(patch tokens))``.
            cls_out: (1, C) final CLS before the norm (FoV-head input, spec §8 #8).
        """
        x = tokens
        mask = _key_mask(token_valid)
        for block in self.blocks:
            x = block(x, mask)
        return self.feature_proj(self.norm(x[:, 1:])), x[:, 0]


class DecoderStage(nn.Module):
    """Stage 4, dynamic N: the 6-layer decoder, iterative heads, FoV and metric translation (spec
    §1.6-1.8).

    Args:
        model: the network whose ``forward_decoder`` (and with it all decoder/head submodules) is
            reused.
    """

    def __init__(self, model: MetricAwareHMR):
        super().__init__()
        self.model = model
        self.output_names = tuple(
            n for n in DECODER_OUTPUTS if n != "pred_fov" or model.cfg.use_fov
        )

    def forward(
        self,
        memory: Tensor,
        memory_pos: Tensor,
        memory_valid: Tensor | None,
        cls_out: Tensor,
        resized_hw: Tensor,
    ) -> tuple[Tensor, ...]:
        """Decode one image.

        Args:
            memory: (1, N, D) encoder memory (padded).
            memory_pos: (1, N, D) memory position encodings.
            memory_valid: (1, N) bool, False for padding; None = all real.
            cls_out: (1, C) final CLS.
            resized_hw: (1, 2) float32 (h', w') resized unpadded image size, pixels.

        Returns:
            The ``pred_*`` tensors in ``self.output_names`` order.
        """
        out = self.model.forward_decoder(
            memory, memory_pos, _key_mask(memory_valid), cls_out, resized_hw
        )
        return tuple(out[name] for name in self.output_names)


def build_stages(model: MetricAwareHMR) -> dict[str, nn.Module]:
    """The four stage modules of a loaded network, keyed by ``STAGE_NAMES``, in eval mode."""
    stages = {
        "scale_map": ScaleMapStage(model),
        "lvl0": Lvl0Stage(model),
        "encoder": EncoderStage(model),
        "decoder": DecoderStage(model),
    }
    return {name: stage.eval() for name, stage in stages.items()}
