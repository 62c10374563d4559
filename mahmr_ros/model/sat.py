"""Scale-Adaptive Tokens: the data-dependent token selection of SAT-HMR / MA-HMR (spec §1.5).

Everything with a data-dependent size lives here, as pure functions on one image's tensors, so that the
network splits naturally into exportable stages (static scale-map pass -> this token plan -> encoder with a
dynamic token axis -> decoder). Grids (image padded to Hp x Wp, multiples of 56):

* lvl1: 28-px cells, (G1h, G1w) = (Hp/28, Wp/28); the scale map lives here.
* lvl0: 14-px cells, 2 x 2 per high-res lvl1 cell.
* lvl2: 56-px cells = aligned 2 x 2 groups of lvl1 cells, (Hp/56, Wp/56).

Semantics are per image (no image can change another's tokens), matching the official code at batch size 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SatMasks:
    """Token-selection masks of a batch (all bool).

    Attributes:
        hr_cells: (B, G1h, G1w) lvl1 cells replaced by 4 high-resolution lvl0 tokens.
        pooled_groups: (B, G1h/2, G1w/2) 2x2 groups of pure background, max-pooled into one lvl2 token.
        keep_lvl1: (B, G1h, G1w) lvl1 cells that stay as lvl1 tokens.
    """

    hr_cells: Tensor
    pooled_groups: Tensor
    keep_lvl1: Tensor

    def num_tokens(self) -> Tensor:
        """(B,) int64 tokens entering the final encoder blocks per image (CLS excluded)."""
        return (
            4 * self.hr_cells.flatten(1).sum(1)
            + self.keep_lvl1.flatten(1).sum(1)
            + self.pooled_groups.flatten(1).sum(1)
        )


def select_cells(
    scale_map: Tensor, conf_thresh: float = 0.3, scale_thresh: float = 0.5, official_quirk: bool = True
) -> SatMasks:
    """Decide per lvl1 cell: high-res, kept, or pooled (spec §1.5 steps 3 and 5).

    ``valid = conf > conf_thresh``; ``hr = valid & scale < scale_thresh``. A 2x2 group with no valid cell is
    pooled. In the other groups every non-hr cell stays (also cells with conf <= thresh). Official quirk
    (MA-HMR, matches official at batch size 1; per image here): an image without any pooled group keeps its
    hr cells as lvl1 tokens as well.

    Args:
        scale_map: (B, G1h, G1w, 2) float in [0, 1]: channel 0 person confidence, channel 1 relative scale.
            G1h and G1w must be even.
        conf_thresh: threshold on channel 0 (strict >).
        scale_thresh: threshold on channel 1 (strict <).
        official_quirk: reproduce the official no-pooled-group behaviour.

    Returns:
        SatMasks for the batch.
    """
    B, G1h, G1w, _ = scale_map.shape
    valid = scale_map[..., 0] > conf_thresh
    hr = valid & (scale_map[..., 1] < scale_thresh)
    group_valid = valid.reshape(B, G1h // 2, 2, G1w // 2, 2).any(dim=4).any(dim=2)  # (B, G2h, G2w)
    pooled = ~group_valid
    in_valid_group = group_valid.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    keep = in_valid_group & ~hr
    if official_quirk:
        no_pooled = ~pooled.flatten(1).any(dim=1)  # (B,)
        keep = keep | (hr & no_pooled[:, None, None])
    return SatMasks(hr_cells=hr, pooled_groups=pooled, keep_lvl1=keep)


def morton_code(y: Tensor, x: Tensor, bits: int = 16) -> Tensor:
    """Z-order index of integer cells: bit i of x -> bit 2i, bit i of y -> bit 2i+1 (int64, same shape)."""
    code = torch.zeros_like(y, dtype=torch.int64)
    for i in range(bits):
        code |= ((x.long() >> i) & 1) << (2 * i)
        code |= ((y.long() >> i) & 1) << (2 * i + 1)
    return code


def morton_order(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """(height*width,) int64 raster indices sorted by Morton code (aligned 2x2 blocks are consecutive)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    return torch.argsort(morton_code(ys.flatten(), xs.flatten()))


@dataclass
class TokenPlan:
    """Index lists of one image's tokens, each in Morton order of the lvl1 cells (the official layout).

    Attributes:
        hr_yx: (n0, 2) int64 (y1, x1) of the high-res lvl1 cells; each gives 4 lvl0 tokens (2y1+dy, 2x1+dx)
            in raster order (dy, dx) = (0,0), (0,1), (1,0), (1,1).
        lvl1_yx: (n1, 2) int64 (y1, x1) of the kept lvl1 cells.
        lvl2_yx: (n2, 2) int64 (y2, x2) of the pooled groups.
    """

    hr_yx: Tensor
    lvl1_yx: Tensor
    lvl2_yx: Tensor


def plan_tokens(hr_cells: Tensor, pooled_groups: Tensor, keep_lvl1: Tensor) -> TokenPlan:
    """One image's masks (``SatMasks`` entries without the batch dim) to Morton-ordered index lists."""
    G1h, G1w = hr_cells.shape
    order1 = morton_order(G1h, G1w, hr_cells.device)
    order2 = morton_order(G1h // 2, G1w // 2, hr_cells.device)

    def cells(mask: Tensor, order: Tensor, width: int) -> Tensor:
        flat = order[mask.flatten()[order]]
        return torch.stack([flat // width, flat % width], dim=-1)

    return TokenPlan(
        hr_yx=cells(hr_cells, order1, G1w),
        lvl1_yx=cells(keep_lvl1, order1, G1w),
        lvl2_yx=cells(pooled_groups, order2, G1w // 2),
    )


def gather_hr_patches(image: Tensor, hr_yx: Tensor, cell_px: int = 28) -> Tensor:
    """Full-resolution pixels of the high-res cells.

    Args:
        image: (3, Hp, Wp) float32 normalised network input.
        hr_yx: (n0, 2) int64 lvl1 cells (y1, x1).
        cell_px: lvl1 cell size in pixels (2 x patch size).

    Returns:
        (n0, 3, cell_px, cell_px) patches.
    """
    C, Hp, Wp = image.shape
    cells = image.reshape(C, Hp // cell_px, cell_px, Wp // cell_px, cell_px).permute(1, 3, 0, 2, 4)
    return cells[hr_yx[:, 0], hr_yx[:, 1]]


def max_pool_groups(lvl1_grid: Tensor, lvl2_yx: Tensor) -> Tensor:
    """lvl2 tokens: element-wise max over the 4 processed lvl1 tokens of each pooled group (spec §8 #10).

    Args:
        lvl1_grid: (G1h, G1w, C) lvl1 tokens after the scale-map blocks.
        lvl2_yx: (n2, 2) int64 pooled groups (y2, x2).

    Returns:
        (n2, C) lvl2 tokens.
    """
    G1h, G1w, C = lvl1_grid.shape
    groups = (
        lvl1_grid.reshape(G1h // 2, 2, G1w // 2, 2, C)
        .permute(0, 2, 1, 3, 4)
        .reshape(G1h // 2, G1w // 2, 4, C)
    )
    return groups[lvl2_yx[:, 0], lvl2_yx[:, 1]].amax(dim=1)
