"""The torch backend: the stage modules run eagerly (or compiled) under autocast, on CPU or CUDA.

Precision is applied with ``torch.autocast`` rather than by casting the weights: matmuls and convolutions run
in bf16/fp16 while LayerNorm, softmax and the sigmoid/threshold maths of SAT stay in float32 (autocast's own
op lists), which keeps the token selection stable. On CUDA, SDPA picks flash / memory-efficient attention by
itself; ``compile=True`` wraps the encoder and decoder stages in ``torch.compile`` (use it with a
``token_bucket`` so only a few shapes get compiled). Note that reduced precision can move scale-map values
across the SAT thresholds, so a bf16/fp16 frame may select slightly different tokens than fp32.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from mahmr_ros.runtime.backend import DTYPES, BackendError, resolve_device
from mahmr_ros.runtime.staged import StagedNetwork, decoder_output_names
from mahmr_ros.runtime.stages import build_stages

LOG = logging.getLogger(__name__)


class TorchStageRunner:
    """Runs the ``stages.py`` modules on one device under autocast.

    Args:
        model: the network (moved to ``device``).
        device: torch device.
        precision: ``fp32`` / ``bf16`` / ``fp16`` (fp16 only on CUDA).
        compile: ``torch.compile`` the encoder and decoder stages.
    """

    requires_masks = False

    def __init__(self, model, device: torch.device, precision: str = "fp32", compile: bool = False):
        if precision == "fp16" and device.type != "cuda":
            raise BackendError("[runtime.torch] fp16 needs a CUDA device; on the CPU use bf16 or fp32")
        self.device = device
        self.precision = precision
        self.decoder_outputs = decoder_output_names(model)
        model.to(device).eval()
        self.stages = build_stages(model)
        if compile:
            for name in ("encoder", "decoder"):
                self.stages[name] = torch.compile(self.stages[name], dynamic=False)

    def run(self, stage: str, *inputs: Tensor | None) -> tuple[Tensor, ...]:
        enabled = self.precision != "fp32"
        dtype = DTYPES[self.precision] if enabled else None
        with torch.no_grad(), torch.autocast(self.device.type, dtype=dtype, enabled=enabled):
            out = self.stages[stage](*inputs)
        return out if isinstance(out, tuple) else (out,)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class TorchBackend:
    """``backend: torch`` — see the module docstring.

    Args:
        model: the loaded network.
        device: ``auto`` / ``cpu`` / ``cuda[:i]``.
        precision: ``fp32`` / ``bf16`` / ``fp16`` (CUDA only).
        compile: ``torch.compile`` the encoder and decoder stages.
        token_bucket: pad the token axis to a multiple of this (default 1 on the CPU, 64 with ``compile``).
        patch_bucket: same for the number of high-resolution cells (default 1, 16 with ``compile``).
        num_threads: torch intra-op threads (None keeps torch's setting).
    """

    name = "torch"

    def __init__(
        self,
        model,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        compile: bool = False,
        token_bucket: int | None = None,
        patch_bucket: int | None = None,
        num_threads: int | None = None,
    ):
        self.device = resolve_device(device)
        self.precision = precision
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.runner = TorchStageRunner(model, self.device, precision, compile=compile)
        token_bucket = token_bucket if token_bucket is not None else (64 if compile else 1)
        patch_bucket = patch_bucket if patch_bucket is not None else (16 if compile else 1)
        self.network = StagedNetwork(model, self.runner, token_bucket, patch_bucket)
        LOG.info(
            "[runtime.torch] %s %s, compile=%s, token bucket %d",
            self.device,
            precision,
            compile,
            token_bucket,
        )

    @property
    def timings_ms(self) -> dict[str, float]:
        return self.network.timings_ms

    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        return self.network(images, resized_hw)
