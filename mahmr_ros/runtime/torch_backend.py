"""The torch backend: the stage modules run eagerly (or compiled) under autocast, on CPU or CUDA.

Reduced precision runs under ``torch.autocast``: matmuls and convolutions in bf16/fp16 while LayerNorm,
softmax and the sigmoid/threshold maths of SAT stay in float32 (autocast's own op lists), which keeps the
token selection stable. The Linear/Conv weights are cast ONCE into a private copy of the network (the
caller's float32 model is left untouched): plain autocast re-casts all ~220 M weights on every frame, about
1.3 GB of memory traffic per frame. On CUDA, SDPA picks flash / memory-efficient attention by itself;
``compile=True`` wraps the encoder and decoder stages in ``torch.compile`` (use it with a ``token_bucket`` so
only a few shapes get compiled; on this 2-core CPU compiling took minutes and gave no gain). Reduced
precision can move scale-map values across the SAT thresholds, so a bf16/fp16 frame may select slightly
different tokens than fp32.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import Tensor, nn

from mahmr_ros.runtime.backend import DTYPES, BackendError, resolve_device
from mahmr_ros.runtime.staged import StagedNetwork, decoder_output_names
from mahmr_ros.runtime.stages import build_stages

LOG = logging.getLogger(__name__)


def cast_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` whose Linear and Conv weights are ``dtype`` (norms and embeddings stay float32)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.to(dtype)
    return model


class TorchStageRunner:
    """Runs the ``stages.py`` modules on one device under autocast.

    Args:
        model: the network (moved to ``device`` for fp32; copied with cast weights otherwise).
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
        if precision != "fp32":
            model = cast_weights(model, DTYPES[precision])
        self.model = model.to(device).eval()
        self.stages = build_stages(self.model)
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
        self.network = StagedNetwork(self.runner.model, self.runner, token_bucket, patch_bucket)
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
