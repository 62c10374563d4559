"""Host side of the staged network: SAT token selection between the four stage graphs (see ``stages.py``).

``StagedNetwork`` is a drop-in for ``MetricAwareHMR.forward`` (same inputs, same output dict) that runs the
stages through a ``StageRunner`` — torch modules, onnxruntime sessions or TensorRT engines — and does the
data-dependent steps (thresholds, index lists, gathers, group max-pooling, padding to buckets, memory
positions) with torch ops on the runner's device. Per-stage wall times of the last call are kept in
``timings_ms`` (``sync`` is called before each clock read, so CUDA times are real).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from mahmr_ros.model import sat
from mahmr_ros.model.network import MetricAwareHMR
from mahmr_ros.runtime.stages import DECODER_OUTPUTS

# Timing keys of ``StagedNetwork.timings_ms``: the four graphs plus the host-side token selection.
TIMING_KEYS = ("scale_map", "select", "lvl0", "encoder", "decoder")


@runtime_checkable
class StageRunner(Protocol):
    """Executes the stage graphs; inputs/outputs are torch tensors on ``device``.

    Positional inputs and outputs follow ``stages.py`` (and the ONNX input/output names of ``export.py``):
    ``scale_map(images) -> (cls1, lvl1, scale_map)``; ``lvl0(patches, pos_index, patch_valid) -> (tokens,)``;
    ``encoder(tokens, token_valid) -> (memory, cls_out)``;
    ``decoder(memory, memory_pos, memory_valid, cls_out, resized_hw) -> pred_*`` in ``decoder_outputs``.
    """

    device: torch.device
    # True when masks must always be passed (graph backends); torch may take None for "no padding".
    requires_masks: bool
    decoder_outputs: tuple[str, ...]

    def run(self, stage: str, *inputs: Tensor | None) -> tuple[Tensor, ...]: ...

    def synchronize(self) -> None: ...


def bucket(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= n (n itself for multiple <= 1); n >= 1."""
    if multiple <= 1:
        return n
    return -(-n // multiple) * multiple


def _pad_rows(x: Tensor, rows: int, dim: int = 0) -> Tensor:
    """Append zero rows along ``dim`` up to ``rows``."""
    missing = rows - x.shape[dim]
    if missing <= 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


class StagedNetwork:
    """``MetricAwareHMR.forward`` as four graphs plus host-side SAT.

    Args:
        model: the loaded network (its config and ``memory_pos`` are used; the decoder position encodings
            of every cell of every level are tabulated once here, on the runner's device, so the host never
            depends on where the model itself lives).
        runner: executes the stage graphs.
        token_bucket: pad the final-encoder token axis N to a multiple of this (1 = no padding). Bucketing
            bounds the number of distinct shapes (TensorRT profiles, CUDA graphs, compiled kernels).
        patch_bucket: same for the number M of high-resolution cells in the lvl0 stage.
    """

    def __init__(
        self, model: MetricAwareHMR, runner: StageRunner, token_bucket: int = 1, patch_bucket: int = 1
    ):
        self.model = model
        self.cfg = model.cfg
        self.runner = runner
        self.token_bucket = int(token_bucket)
        self.patch_bucket = int(patch_bucket)
        self.timings_ms: dict[str, float] = dict.fromkeys(TIMING_KEYS, 0.0)
        self._clock = 0.0
        self._pos_table, self._pos_offsets, self._pos_widths = self._memory_pos_table()

    def _memory_pos_table(self) -> tuple[Tensor, Tensor, Tensor]:
        """(sum_l F_l^2, D) ``model.memory_pos`` of every cell of the 92/46/23 canvases, level-major.

        Returns the table plus per-level row offsets and canvas widths (int64, runner device).
        """
        cfg = self.cfg
        widths = [cfg.grid_lvl0, cfg.grid_lvl1, cfg.grid_lvl1 // 2]
        device = next(self.model.parameters()).device
        levels, cells = [], []
        for level, width in enumerate(widths):
            ys, xs = torch.meshgrid(torch.arange(width), torch.arange(width), indexing="ij")
            levels.append(torch.full((width * width,), level, dtype=torch.long))
            cells.append(torch.stack([ys.flatten(), xs.flatten()], dim=-1))
        with torch.no_grad():
            table = self.model.memory_pos(torch.cat(levels).to(device), torch.cat(cells).to(device))
        offsets = torch.tensor([0, widths[0] ** 2, widths[0] ** 2 + widths[1] ** 2])
        dev = self.runner.device
        return table.float().to(dev), offsets.to(dev), torch.tensor(widths).to(dev)

    # --------------------------------------------------------------------------------------------- timing
    def _tick(self) -> None:
        self.runner.synchronize()
        self._clock = time.perf_counter()

    def _tock(self, key: str) -> None:
        self.runner.synchronize()
        now = time.perf_counter()
        self.timings_ms[key] += (now - self._clock) * 1e3
        self._clock = now

    # ---------------------------------------------------------------------------------------------- steps
    def _lvl0(self, image: Tensor, hr_yx: Tensor) -> Tensor:
        """(4 n0, C) lvl0' tokens of one image's hr cells (n0 >= 1), through the lvl0 graph."""
        n0 = hr_yx.shape[0]
        M = bucket(n0, self.patch_bucket)
        patches = _pad_rows(sat.gather_hr_patches(image, hr_yx, 2 * self.cfg.patch_size), M)
        dy = torch.tensor([0, 0, 1, 1], device=hr_yx.device)
        dx = torch.tensor([0, 1, 0, 1], device=hr_yx.device)
        pos_index = (2 * hr_yx[:, :1] + dy) * self.cfg.grid_lvl0 + (2 * hr_yx[:, 1:] + dx)  # (n0, 4)
        pos_index = _pad_rows(pos_index.to(torch.int32), M)
        valid = None
        if M != n0 or self.runner.requires_masks:
            valid = torch.arange(M, device=hr_yx.device) < n0
        (tokens,) = self.runner.run("lvl0", patches, pos_index, valid)
        return tokens[: 4 * n0]

    def _single(self, image: Tensor, cls1: Tensor, lvl1: Tensor, masks: sat.SatMasks, b: int, hw: Tensor):
        """Stages 2-4 of image b. Returns the decoder outputs (tuple, each (1, ...))."""
        plan = sat.plan_tokens(masks.hr_cells[b], masks.pooled_groups[b], masks.keep_lvl1[b])
        C = lvl1.shape[-1]
        n0 = plan.hr_yx.shape[0]
        self._tock("select")
        t0 = self._lvl0(image, plan.hr_yx) if n0 else lvl1.new_zeros(0, C)
        self._tock("lvl0")
        t1 = lvl1[plan.lvl1_yx[:, 0], plan.lvl1_yx[:, 1]]
        t2 = sat.max_pool_groups(lvl1, plan.lvl2_yx)
        t0 = t0.to(lvl1.dtype)
        tokens = torch.cat([cls1[None], t0, t1, t2], dim=0)  # (1+N, C)
        N = tokens.shape[0] - 1
        Np = bucket(N, self.token_bucket)
        token_valid = memory_valid = None
        if Np != N or self.runner.requires_masks:
            memory_valid = (torch.arange(Np, device=tokens.device) < N)[None]  # (1, Np)
            token_valid = torch.cat([torch.ones_like(memory_valid[:, :1]), memory_valid], dim=1)
        tokens = _pad_rows(tokens, 1 + Np)[None]
        # Token levels and cells in the same order as the token sequence (lvl0, lvl1, lvl2).
        dy = torch.tensor([0, 0, 1, 1], device=tokens.device)
        dx = torch.tensor([0, 1, 0, 1], device=tokens.device)
        hr = plan.hr_yx
        yx0 = torch.stack([(2 * hr[:, :1] + dy).flatten(), (2 * hr[:, 1:] + dx).flatten()], dim=-1)
        levels = torch.cat(
            [
                torch.zeros(4 * n0, dtype=torch.long, device=tokens.device),
                torch.ones(len(t1), dtype=torch.long, device=tokens.device),
                torch.full((len(t2),), 2, dtype=torch.long, device=tokens.device),
            ]
        )
        yx = torch.cat([yx0, plan.lvl1_yx, plan.lvl2_yx], dim=0)
        rows = self._pos_offsets[levels] + yx[:, 0] * self._pos_widths[levels] + yx[:, 1]
        memory_pos = _pad_rows(self._pos_table[rows], Np)[None]  # (1, Np, D) = model.memory_pos(levels, yx)
        self._tock("select")
        memory, cls_out = self.runner.run("encoder", tokens, token_valid)
        self._tock("encoder")
        outputs = self.runner.run("decoder", memory, memory_pos, memory_valid, cls_out, hw)
        self._tock("decoder")
        return outputs

    # -------------------------------------------------------------------------------------------- forward
    @torch.no_grad()
    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        """Same contract as ``MetricAwareHMR.forward`` (api.md §1); each image is processed alone.

        Args:
            images: (B, 3, Hp, Wp) float32 normalised input; Hp, Wp multiples of 56, long side <= input_size.
            resized_hw: (B, 2) int (h', w') resized unpadded size of each image, pixels.

        Returns:
            The ``pred_*`` dict plus ``sat`` (as ``MetricAwareHMR.forward``), float32, on the runner's device.
        """
        B, _, Hp, Wp = images.shape
        step = 4 * self.cfg.patch_size
        if Hp % step or Wp % step or max(Hp, Wp) > self.cfg.input_size:
            raise ValueError(
                f"[runtime] network input {Hp}x{Wp} must have both sides multiples of {step} and the long "
                f"side <= input_size={self.cfg.input_size} (use mahmr_ros.model.preprocess)"
            )
        self.timings_ms = dict.fromkeys(TIMING_KEYS, 0.0)
        device = self.runner.device
        images = images.to(device, torch.float32)
        resized_hw = resized_hw.to(device).reshape(B, 2).float()
        self._tick()
        per_image, scale_maps, masks_list = [], [], []
        for b in range(B):
            cls1, lvl1, scale_map = self.runner.run("scale_map", images[b : b + 1])
            self._tock("scale_map")
            scale_map = scale_map.float()
            masks = sat.select_cells(
                scale_map, self.cfg.conf_thresh, self.cfg.scale_thresh, self.cfg.sat_official_quirk
            )
            outputs = self._single(images[b], cls1[0], lvl1[0], masks, 0, resized_hw[b : b + 1])
            per_image.append(outputs)
            scale_maps.append(scale_map)
            masks_list.append(masks)
        out = {
            name: torch.cat([o[i] for o in per_image]).float()
            for i, name in enumerate(self.runner.decoder_outputs)
        }
        masks = sat.SatMasks(
            hr_cells=torch.cat([m.hr_cells for m in masks_list]),
            pooled_groups=torch.cat([m.pooled_groups for m in masks_list]),
            keep_lvl1=torch.cat([m.keep_lvl1 for m in masks_list]),
        )
        out["sat"] = {
            "hr_cells": masks.hr_cells,
            "pooled_groups": masks.pooled_groups,
            "num_tokens": masks.num_tokens(),
            "scale_map": torch.cat(scale_maps),
        }
        return out


def decoder_output_names(model: MetricAwareHMR) -> tuple[str, ...]:
    """The decoder stage's outputs for this config (``pred_fov`` only with a FoV head)."""
    return tuple(n for n in DECODER_OUTPUTS if n != "pred_fov" or model.cfg.use_fov)
