"""The DINOv2 ViT trunk as MA-HMR uses it (spec §1.4): main blocks, the scale-map ("additional")
blocks, the final norm. DINOv2's own cls/pos/patch embeddings are absent: their roles are taken by
the network's ``encoder_cr_token``, ``encoder_pos_embeds`` and ``encoder_patch_proj`` (see
``network.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mahmr_ros.model.vit import Block


class ViTEncoder(nn.Module):
    """Blocks only; token embedding and SAT live outside.

    Args:
        embed_dim: token width C.
        depth: main blocks (``blocks.0..depth-1``).
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        num_additional: scale-map blocks (``additional_blocks.*``, = ``get_map_layer``).
    """

    def __init__(
        self, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, num_additional: int
    ):
        super().__init__()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.additional_blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio) for _ in range(num_additional)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    #: Recompute each block in the backward pass instead of storing its activations (training
    #: memory).
    grad_checkpointing: bool = False

    def _run(self, block: nn.Module, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint(block, x, attn_mask, use_reentrant=False)
        return block(x, attn_mask)

    def run_blocks(
        self, x: Tensor, start: int, stop: int | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """Main blocks ``start..stop-1`` on (B, N, C) tokens; ``attn_mask`` (B, 1, 1, N) bool keys
        or None."""
        for block in self.blocks[start:stop]:
            x = self._run(block, x, attn_mask)
        return x

    def run_additional(self, x: Tensor) -> Tensor:
        """The scale-map blocks on (B, N, C) tokens."""
        for block in self.additional_blocks:
            x = self._run(block, x, None)
        return x
