"""Host side of the staged network: SAT token selection between the four stage graphs (see
``stages.py``).

``StagedNetwork`` is a drop-in for ``MetricAwareHMR.forward`` (same inputs, same output dict) that
runs the stages through a ``StageRunner`` — torch modules, onnxruntime sessions or TensorRT
engines. The data-dependent steps (thresholds, index lists, gathers, group max-pooling, padding to
buckets, memory positions) are the network's own SAT orchestration, ``mahmr_ros.model.sat.encode``,
driven here with the stage graphs as its compute (``_RunnerStages``), one image at a time, with
torch ops on the runner's device. Per-stage wall times of the last call are kept in ``timings_ms``
(``sync`` is called before each clock read, so CUDA times are real).
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

    Positional inputs and outputs follow ``stages.py`` (and the ONNX input/output names of
    ``export.py``): ``scale_map(images) -> (cls1, lvl1, scale_map)``; ``lvl0(patches, pos_index,
    patch_valid) -> (tokens,)``; ``encoder(tokens, token_valid) -> (memory, cls_out)``;
    ``decoder(memory, memory_pos, memory_valid, cls_out, resized_hw) -> pred_*`` in
    ``decoder_outputs``.
    """

    device: torch.device
    # True when masks must always be passed (graph backends); torch may take None for "no padding".
    requires_masks: bool
    decoder_outputs: tuple[str, ...]

    def run(self, stage: str, *inputs: Tensor | None) -> tuple[Tensor, ...]: ...

    def synchronize(self) -> None: ...


# ``bucket`` lives with the SAT orchestration; re-exported for the runtime's callers.
bucket = sat.bucket


class _RunnerStages:
    """The stage graphs as ``sat.SatStages`` for one image (batch 1), recording per-stage wall
    times.

    Host-side work between two graph calls (selection, gathers, assembly, positions) is booked as
    ``select``.
    """

    def __init__(self, net: StagedNetwork):
        self.net = net
        self.cfg = net.cfg

    def forward_scale_map(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cls1, lvl1, scale_map = self.net.runner.run("scale_map", images)
        self.net._tock("scale_map")
        return cls1, lvl1, scale_map.float()

    def forward_lvl0(
        self, patches: Tensor, pos_index: Tensor, patch_valid: Tensor | None
    ) -> Tensor:
        self.net._tock("select")
        valid = None if patch_valid is None else patch_valid[0]
        (tokens,) = self.net.runner.run("lvl0", patches[0], pos_index[0].to(torch.int32), valid)
        self.net._tock("lvl0")
        return tokens[None]

    def forward_encoder(self, tokens: Tensor, token_valid: Tensor | None) -> tuple[Tensor, Tensor]:
        self.net._tock("select")
        memory, cls_out = self.net.runner.run("encoder", tokens, token_valid)
        self.net._tock("encoder")
        return memory, cls_out

    def memory_pos(self, levels: Tensor, yx: Tensor) -> Tensor:
        """``model.memory_pos(levels, yx)`` by table lookup."""
        net = self.net
        return net._pos_table[
            net._pos_offsets[levels] + yx[:, 0] * net._pos_widths[levels] + yx[:, 1]
        ]


class StagedNetwork:
    """``MetricAwareHMR.forward`` as four graphs plus host-side SAT.

    Args:
        model: the loaded network (its config and ``memory_pos`` are used; the decoder position
            encodings of every cell of every level are tabulated once here, on the runner's device,
            so the host never depends on where the model itself lives).
        runner: executes the stage graphs.
        token_bucket: pad the final-encoder token axis N to a multiple of this (1 = no padding).
            Bucketing bounds the number of distinct shapes (TensorRT profiles, CUDA graphs,
            compiled kernels).
        patch_bucket: same for the number M of high-resolution cells in the lvl0 stage.
    """

    def __init__(
        self,
        model: MetricAwareHMR,
        runner: StageRunner,
        token_bucket: int = 1,
        patch_bucket: int = 1,
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
        """(sum_l F_l^2, D) ``model.memory_pos`` of every cell of the 92/46/23 canvases,
        level-major.

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
            table = self.model.memory_pos(
                torch.cat(levels).to(device), torch.cat(cells).to(device)
            )
        offsets = torch.tensor([0, widths[0] ** 2, widths[0] ** 2 + widths[1] ** 2])
        dev = self.runner.device
        return table.float().to(dev), offsets.to(dev), torch.tensor(widths).to(dev)

    # -------------------------------------------------------------------------------------- timing
    def _tick(self) -> None:
        self.runner.synchronize()
        self._clock = time.perf_counter()

    def _tock(self, key: str) -> None:
        self.runner.synchronize()
        now = time.perf_counter()
        self.timings_ms[key] += (now - self._clock) * 1e3
        self._clock = now

    # ------------------------------------------------------------------------------------- forward
    @torch.no_grad()
    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        """Same contract as ``MetricAwareHMR.forward`` (api.md §1); each image is processed alone.

        Args:
            images: (B, 3, Hp, Wp) float32 normalised input; Hp, Wp multiples of 56, long side <=
                input_size.
            resized_hw: (B, 2) int (h', w') resized unpadded size of each image, pixels.

        Returns:
            The ``pred_*`` dict plus ``sat`` (as ``MetricAwareHMR.forward``), float32, on the
            runner's device.
        """
        B = images.shape[0]
        self.cfg.check_network_hw(images.shape[-2:])
        self.timings_ms = dict.fromkeys(TIMING_KEYS, 0.0)
        device = self.runner.device
        images = images.to(device, torch.float32)
        resized_hw = resized_hw.to(device).reshape(B, 2).float()
        stages = _RunnerStages(self)
        self._tick()
        per_image, encodings = [], []
        for b in range(B):
            enc = sat.encode(
                stages,
                images[b : b + 1],
                self.token_bucket,
                self.patch_bucket,
                self.runner.requires_masks,
            )
            self._tock("select")
            outputs = self.runner.run(
                "decoder",
                enc.memory,
                enc.memory_pos,
                enc.memory_valid,
                enc.cls_out,
                resized_hw[b : b + 1],
            )
            self._tock("decoder")
            per_image.append(outputs)
            encodings.append(enc)
        out = {
            name: torch.cat([o[i] for o in per_image]).float()
            for i, name in enumerate(self.runner.decoder_outputs)
        }
        sat_outputs = [enc.outputs() for enc in encodings]
        out["sat"] = {key: torch.cat([o[key] for o in sat_outputs]) for key in sat_outputs[0]}
        return out


def decoder_output_names(model: MetricAwareHMR) -> tuple[str, ...]:
    """The decoder stage's outputs for this config (``pred_fov`` only with a FoV head)."""
    return tuple(n for n in DECODER_OUTPUTS if n != "pred_fov" or model.cfg.use_fov)
