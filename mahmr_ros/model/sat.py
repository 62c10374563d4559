"""Scale-Adaptive Tokens: the data-dependent token selection of SAT-HMR / MA-HMR (spec §1.5).

Everything with a data-dependent size lives here, as pure functions on one image's tensors, so that
the network splits naturally into exportable stages (static scale-map pass -> this token plan ->
encoder with a dynamic token axis -> decoder). Grids (image padded to Hp x Wp, multiples of 56):

* lvl1: 28-px cells, (G1h, G1w) = (Hp/28, Wp/28); the scale map lives here.
* lvl0: 14-px cells, 2 x 2 per high-res lvl1 cell.
* lvl2: 56-px cells = aligned 2 x 2 groups of lvl1 cells, (Hp/56, Wp/56).

Semantics are per image (no image can change another's tokens), matching the official code at batch
size 1.

``encode`` is THE SAT forward orchestration, used by the network (``MetricAwareHMR.forward``), by
training (``training.forward``, same encoder, every decoder layer decoded) and by the staged
runtime (``runtime.staged``, whose stage graphs run the compute). It takes the compute as a
``SatStages`` object and does everything data-dependent itself, for a batch padded to the longest
image (masked as attention keys):

    forward_scale_map(images)            -> cls1, lvl1 grid, scale map
    select_cells / plan_tokens           -> per image: hr cells, kept lvl1 cells, pooled groups
    gather_hr_patches + lvl0_cells       -> (B, M, 3, 28, 28) patches,
                                            (B, M, 4) 92-grid position indices
    forward_lvl0(patches, pos, valid)    -> (B, 4M, C) lvl0' tokens (original CLS, blocks[:gml])
    assemble_tokens                      -> per image [CLS' ; lvl0' ; lvl1' ; lvl2 max-pool],
                                            levels, cells
    forward_encoder(tokens, valid)       -> (B, N, D) memory, (B, C) final CLS
    memory_pos(levels, cells)            -> (B, N, D) decoder position encodings
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class SatMasks:
    """Token-selection masks of a batch (all bool).

    Attributes:
        hr_cells: (B, G1h, G1w) lvl1 cells replaced by 4 high-resolution lvl0 tokens.
        pooled_groups: (B, G1h/2, G1w/2) 2x2 groups of pure background, max-pooled into one lvl2
            token.
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
    scale_map: Tensor,
    conf_thresh: float = 0.3,
    scale_thresh: float = 0.5,
    official_quirk: bool = True,
) -> SatMasks:
    """Decide per lvl1 cell: high-res, kept, or pooled (spec §1.5 steps 3 and 5).

    ``valid = conf > conf_thresh``; ``hr = valid & scale < scale_thresh``. A 2x2 group with no
    valid cell is pooled. In the other groups every non-hr cell stays (also cells with conf <=
    thresh). Official quirk (MA-HMR, matches official at batch size 1; per image here): an image
    without any pooled group keeps its hr cells as lvl1 tokens as well.

    Args:
        scale_map: (B, G1h, G1w, 2) float in [0, 1]: channel 0 person confidence, channel 1
            relative scale. G1h and G1w must be even.
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
    """Z-order index of integer cells: bit i of x -> bit 2i, bit i of y -> bit 2i+1 (int64, same
    shape)."""
    code = torch.zeros_like(y, dtype=torch.int64)
    for i in range(bits):
        code |= ((x.long() >> i) & 1) << (2 * i)
        code |= ((y.long() >> i) & 1) << (2 * i + 1)
    return code


def morton_order(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """(height*width,) int64 raster indices sorted by Morton code (aligned 2x2 blocks are
    consecutive)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    return torch.argsort(morton_code(ys.flatten(), xs.flatten()))


@dataclass
class TokenPlan:
    """Index lists of one image's tokens, each in Morton order of the lvl1 cells (the official
    layout).

    Attributes:
        hr_yx: (n0, 2) int64 (y1, x1) of the high-res lvl1 cells; each gives 4 lvl0 tokens (2y1+dy,
            2x1+dx) in raster order (dy, dx) = (0,0), (0,1), (1,0), (1,1).
        lvl1_yx: (n1, 2) int64 (y1, x1) of the kept lvl1 cells.
        lvl2_yx: (n2, 2) int64 (y2, x2) of the pooled groups.
    """

    hr_yx: Tensor
    lvl1_yx: Tensor
    lvl2_yx: Tensor


def plan_tokens(hr_cells: Tensor, pooled_groups: Tensor, keep_lvl1: Tensor) -> TokenPlan:
    """One image's masks (``SatMasks`` entries without the batch dim) to Morton-ordered index
    lists."""
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
    """lvl2 tokens: element-wise max over the 4 processed lvl1 tokens of each pooled group (spec
    §8 #10).

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


def lvl0_cells(hr_yx: Tensor) -> Tensor:
    """(n0, 2) high-res lvl1 cells -> (n0, 4, 2) int64 lvl0 cells (2y1+dy, 2x1+dx), raster (dy, dx)
    order."""
    d = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], device=hr_yx.device)
    return 2 * hr_yx[:, None, :] + d[None]


def assemble_tokens(
    cls1: Tensor, lvl0_tokens: Tensor, lvl1_grid: Tensor, plan: TokenPlan
) -> tuple[Tensor, Tensor, Tensor]:
    """One image's final-encoder sequence [CLS' ; lvl0' ; kept lvl1' ; lvl2] (spec §1.5 step 6).

    Args:
        cls1: (C,) CLS' after the scale-map blocks.
        lvl0_tokens: (4 n0, C) lvl0' tokens, in ``plan.hr_yx`` order, 4 per cell in raster order.
        lvl1_grid: (G1h, G1w, C) lvl1' tokens.
        plan: the image's ``TokenPlan``.

    Returns:
        tokens (1 + N, C); levels (N,) int64 0/1/2; cells (N, 2) int64 (y, x) on each token's level
        grid.
    """
    t1 = lvl1_grid[plan.lvl1_yx[:, 0], plan.lvl1_yx[:, 1]]
    t2 = max_pool_groups(lvl1_grid, plan.lvl2_yx)
    tokens = torch.cat([cls1[None], lvl0_tokens.to(lvl1_grid.dtype), t1, t2], dim=0)
    device = lvl1_grid.device
    n0, n1, n2 = plan.hr_yx.shape[0], len(t1), len(t2)
    levels = torch.cat(
        [
            torch.zeros(4 * n0, dtype=torch.long, device=device),
            torch.ones(n1, dtype=torch.long, device=device),
            torch.full((n2,), 2, dtype=torch.long, device=device),
        ]
    )
    cells = torch.cat([lvl0_cells(plan.hr_yx).reshape(-1, 2), plan.lvl1_yx, plan.lvl2_yx], dim=0)
    return tokens, levels, cells


def bucket(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= n (n itself for multiple <= 1); n >= 1."""
    if multiple <= 1:
        return n
    return -(-n // multiple) * multiple


class SatStages(Protocol):
    """The compute that ``encode`` drives (``MetricAwareHMR`` itself, or the runtime's stage
    graphs).

    Attributes:
        cfg: the ``ModelConfig`` (thresholds, quirk flag, patch size, grid sizes).
    """

    cfg: object

    def forward_scale_map(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, 3, Hp, Wp) -> cls1 (B, C), lvl1 (B, G1h, G1w, C), scale map (B, G1h, G1w, 2)."""
        ...

    def forward_lvl0(
        self, patches: Tensor, pos_index: Tensor, patch_valid: Tensor | None
    ) -> Tensor:
        """(B, M, 3, 28, 28), (B, M, 4) int64 flat 92-grid indices, (B, M) bool | None -> (B, 4M,
        C)."""
        ...

    def forward_encoder(self, tokens: Tensor, token_valid: Tensor | None) -> tuple[Tensor, Tensor]:
        """(B, 1+N, C), (B, 1+N) bool | None -> memory (B, N, D), final CLS (B, C)."""
        ...

    def memory_pos(self, levels: Tensor, yx: Tensor) -> Tensor:
        """(N,) levels, (N, 2) cells -> (N, D) decoder position encodings."""
        ...


@dataclass
class SatEncoding:
    """Output of ``encode`` for a batch of B images.

    Attributes:
        memory: (B, N, D) decoder memory (rows past an image's length are padding).
        memory_pos: (B, N, D) position encodings (zero rows where padded).
        memory_valid: (B, N) bool, True = real token; None when no image is padded.
        cls_out: (B, C) final CLS before the norm (FoV-head input, spec §8 #8).
        scale_map: (B, G1h, G1w, 2) predicted scale map.
        masks: the token-selection masks.
    """

    memory: Tensor
    memory_pos: Tensor
    memory_valid: Tensor | None
    cls_out: Tensor
    scale_map: Tensor
    masks: SatMasks

    @property
    def memory_mask(self) -> Tensor | None:
        """(B, 1, 1, N) attention key mask of ``memory_valid`` (None = no padding)."""
        return None if self.memory_valid is None else self.memory_valid[:, None, None, :]

    def outputs(self) -> dict[str, Tensor]:
        """The ``sat`` entry of the network outputs (api.md §1)."""
        return {
            "hr_cells": self.masks.hr_cells,
            "pooled_groups": self.masks.pooled_groups,
            "num_tokens": self.masks.num_tokens(),
            "scale_map": self.scale_map,
        }


def _padded(rows: list[Tensor], length: int) -> Tensor:
    """Stack (n_b, ...) tensors into (B, length, ...), zero-padded at the end."""
    return torch.stack([F.pad(r, (0, 0) * (r.dim() - 1) + (0, length - r.shape[0])) for r in rows])


def encode(
    stages: SatStages,
    images: Tensor,
    token_bucket: int = 1,
    patch_bucket: int = 1,
    always_mask: bool = False,
) -> SatEncoding:
    """Run the SAT encoder on a batch (see the module docstring); each image is processed as if
    alone.

    Args:
        stages: the compute (``SatStages``).
        images: (B, 3, Hp, Wp) normalised network input, Hp and Wp multiples of 56.
        token_bucket: pad the final-encoder token axis to a multiple of this (bounded shape set).
        patch_bucket: same for the number of high-resolution cells per image.
        always_mask: pass validity masks even without padding (graph backends want them).

    Returns:
        ``SatEncoding``.
    """
    cfg = stages.cfg
    B = images.shape[0]
    cls1, lvl1, scale_map = stages.forward_scale_map(images)
    with torch.no_grad():  # token selection is a hard, non-differentiable decision (spec §1.5)
        masks = select_cells(
            scale_map.float(), cfg.conf_thresh, cfg.scale_thresh, cfg.sat_official_quirk
        )
    plans = [
        plan_tokens(masks.hr_cells[b], masks.pooled_groups[b], masks.keep_lvl1[b])
        for b in range(B)
    ]
    C, device = lvl1.shape[-1], images.device
    n0 = [p.hr_yx.shape[0] for p in plans]
    lvl0 = [lvl1.new_zeros(0, C) for _ in range(B)]
    if max(n0) > 0:
        M, cell = bucket(max(n0), patch_bucket), 2 * cfg.patch_size
        patches = images.new_zeros(B, M, images.shape[1], cell, cell)
        pos_index = torch.zeros(B, M, 4, dtype=torch.long, device=device)
        for b, plan in enumerate(plans):
            if n0[b]:
                patches[b, : n0[b]] = gather_hr_patches(images[b], plan.hr_yx, cell)
                yx0 = lvl0_cells(plan.hr_yx)
                pos_index[b, : n0[b]] = yx0[..., 0] * cfg.grid_lvl0 + yx0[..., 1]
        patch_valid = None
        if always_mask or min(n0) != M:
            patch_valid = (
                torch.arange(M, device=device)[None] < torch.tensor(n0, device=device)[:, None]
            )
        tokens0 = stages.forward_lvl0(patches, pos_index, patch_valid)  # (B, 4M, C)
        lvl0 = [tokens0[b, : 4 * n0[b]] for b in range(B)]
    sequences, positions = [], []
    for b in range(B):
        tokens, levels, cells = assemble_tokens(cls1[b], lvl0[b], lvl1[b], plans[b])
        sequences.append(tokens)
        positions.append(stages.memory_pos(levels, cells))
    lengths = [len(p) for p in positions]
    N = bucket(max(lengths), token_bucket)
    memory_valid = token_valid = None
    if always_mask or min(lengths) != N:
        memory_valid = (
            torch.arange(N, device=device)[None] < torch.tensor(lengths, device=device)[:, None]
        )
        token_valid = torch.cat([torch.ones_like(memory_valid[:, :1]), memory_valid], dim=1)
    memory, cls_out = stages.forward_encoder(_padded(sequences, 1 + N), token_valid)
    return SatEncoding(memory, _padded(positions, N), memory_valid, cls_out, scale_map, masks)
