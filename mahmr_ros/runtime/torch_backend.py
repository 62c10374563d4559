"""The torch backend: the stage modules run eagerly (or compiled) under autocast, on CPU or CUDA.

Reduced precision runs under ``torch.autocast``: matmuls and convolutions in bf16/fp16 while
LayerNorm, softmax and the sigmoid/threshold maths of SAT stay in float32 (autocast's own op
lists), which keeps the token selection stable. The Linear/Conv weights are cast ONCE into a
private copy of the network (the caller's float32 model is left untouched): plain autocast re-casts
all ~220 M weights on every frame, about 1.3 GB of memory traffic per frame. On CUDA, SDPA picks
flash / memory-efficient attention by itself; ``compile=True`` wraps the encoder and decoder stages
in ``torch.compile`` (use it with a ``token_bucket`` so only a few shapes get compiled; not
measured on the CPU with the current code). Reduced precision can move scale-map values across the
SAT thresholds, so a bf16/fp16 frame may select slightly different tokens than fp32; the output
heads (``FLOAT32_HEADS``) stay float32.

CUDA only (written for the GPU check, ``benchmarks/gpu_check.py``; NOT yet executed on a GPU in
this project): ``cuda_graphs=True`` captures one CUDA graph per stage and input signature and
replays it. The token axes are bucketed (``token_bucket`` 64, ``patch_bucket`` 16 by default) and
masks are always passed, so a camera needs a handful of graphs; SAT's host-side selection still
runs between the graphs. A CPU input on a CUDA backend is uploaded through a reused pinned buffer
(asynchronous copy).
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


# Output heads that stay float32 under reduced precision: small MLPs (on the 50 queries, or the
# lvl1 cells for the scale head) whose outputs are read directly. Rounded to bf16, pred_cam's scale
# carried ~0.4 % error, i.e. about 1 cm of depth at 2 m, and the scale map moved across the SAT
# thresholds (benchmarks/bench_network.py, full-size fov_kid). Their cost is negligible next to the
# encoder and decoder.
FLOAT32_HEADS = (
    "scale_head",
    "fov_head",
    "cam_head",
    "conf_head",
    "pose_head",
    "shape_head",
    "bbox_embed",
)


class Float32Head(nn.Module):
    """Runs ``head`` in float32 with autocast off, whatever the surrounding precision."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head.float()

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.head(x.float())


def cast_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` whose Linear and Conv weights are ``dtype`` (norms and embeddings stay
    float32), except the output heads of ``FLOAT32_HEADS``, which run in float32
    (``Float32Head``)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.to(dtype)
    for name in FLOAT32_HEADS:
        head = getattr(model, name, None)
        if isinstance(
            head, nn.ModuleList
        ):  # per-layer heads; the decoder shares bbox_embed's list object
            for i, layer_head in enumerate(head):
                head[i] = Float32Head(layer_head)
        elif head is not None:
            setattr(model, name, Float32Head(head))
    return model


def graph_key(inputs: tuple[Tensor | None, ...]) -> tuple:
    """The signature a captured graph is valid for: (shape, dtype) per input, None where absent."""
    return tuple(None if x is None else (tuple(x.shape), x.dtype) for x in inputs)


class CudaGraphStage:
    """Replays one captured CUDA graph per input signature of a stage module (CUDA only).

    Inputs are copied into the graph's static buffers and the outputs cloned out of them, so
    callers may keep results across calls. All graphs of a runner share one memory pool.

    Args:
        module: the stage module (weights already in their final dtype, on the device).
        device: the CUDA device.
        dtype: autocast dtype, or None for fp32.
        pool: ``torch.cuda.graph_pool_handle()`` shared by the runner's graphs.
    """

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype | None, pool):
        self.module, self.device, self.dtype, self.pool = module, device, dtype, pool
        self.graphs: dict[tuple, tuple] = {}

    def _forward(self, inputs):
        # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture.
        with (
            torch.no_grad(),
            torch.autocast("cuda", self.dtype, self.dtype is not None, cache_enabled=False),
        ):
            out = self.module(*inputs)
        return out if isinstance(out, tuple) else (out,)

    def _capture(self, inputs) -> tuple:
        static = tuple(None if x is None else x.clone() for x in inputs)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the capture (lazy inits, cuBLAS workspaces)
            for _ in range(2):
                self._forward(static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            outputs = self._forward(static)
        LOG.info("[runtime.torch] captured a CUDA graph for %s", graph_key(inputs))
        return static, graph, outputs

    def __call__(self, *inputs: Tensor | None) -> tuple[Tensor, ...]:
        key = graph_key(inputs)
        if key not in self.graphs:
            self.graphs[key] = self._capture(inputs)
        static, graph, outputs = self.graphs[key]
        for buffer, x in zip(static, inputs):
            if buffer is not None:
                buffer.copy_(x)
        graph.replay()
        return tuple(o.clone() for o in outputs)


class TorchStageRunner:
    """Runs the ``stages.py`` modules on one device under autocast.

    Args:
        model: the network (moved to ``device`` for fp32; copied with cast weights otherwise).
        device: torch device.
        precision: ``fp32`` / ``bf16`` / ``fp16`` (fp16 only on CUDA).
        compile: ``torch.compile`` the encoder and decoder stages.
        cuda_graphs: capture and replay every stage as CUDA graphs (CUDA only; masks always
            passed).
    """

    requires_masks = False

    def __init__(
        self,
        model,
        device: torch.device,
        precision: str = "fp32",
        compile: bool = False,
        cuda_graphs: bool = False,
    ):
        if precision == "fp16" and device.type != "cuda":
            raise BackendError(
                "[runtime.torch] fp16 needs a CUDA device; on the CPU use bf16 or fp32"
            )
        if cuda_graphs and device.type != "cuda":
            raise BackendError(
                "[runtime.torch] cuda_graphs needs a CUDA device (on the CPU leave it off)"
            )
        if cuda_graphs and compile:
            raise BackendError("[runtime.torch] choose compile or cuda_graphs, not both")
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
        self.requires_masks = (
            cuda_graphs  # one graph per bucket, not one per (bucket, padded or not)
        )
        if cuda_graphs:
            pool = torch.cuda.graph_pool_handle()
            dtype = DTYPES[precision] if precision != "fp32" else None
            for name, stage in self.stages.items():
                self.stages[name] = CudaGraphStage(stage, device, dtype, pool)

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
        cuda_graphs: replay the stages as CUDA graphs (CUDA only).
        token_bucket: pad the token axis to a multiple of this (default 1; 64 with ``compile`` or
            ``cuda_graphs``, so that compiled kernels and graphs are reused across frames).
        patch_bucket: same for the number of high-resolution cells (default 1; 16 with ``compile``
            or ``cuda_graphs``).
        num_threads: torch intra-op threads (None keeps torch's setting).
    """

    name = "torch"

    def __init__(
        self,
        model,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        compile: bool = False,
        cuda_graphs: bool = False,
        token_bucket: int | None = None,
        patch_bucket: int | None = None,
        num_threads: int | None = None,
    ):
        self.device = resolve_device(device)
        self.precision = precision
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.runner = TorchStageRunner(
            model, self.device, precision, compile=compile, cuda_graphs=cuda_graphs
        )
        static = compile or cuda_graphs
        token_bucket = token_bucket if token_bucket is not None else (64 if static else 1)
        patch_bucket = patch_bucket if patch_bucket is not None else (16 if static else 1)
        self.network = StagedNetwork(self.runner.model, self.runner, token_bucket, patch_bucket)
        self._pinned: Tensor | None = None
        self._uploaded = (
            None  # CUDA event: the pinned buffer may be refilled once the last copy is done
        )
        LOG.info(
            "[runtime.torch] %s %s, compile=%s, cuda_graphs=%s, token bucket %d",
            self.device,
            precision,
            compile,
            cuda_graphs,
            token_bucket,
        )

    @property
    def timings_ms(self) -> dict[str, float]:
        return self.network.timings_ms

    def upload(self, images: Tensor) -> Tensor:
        """``images`` on the backend's device; a CPU tensor goes to CUDA through a reused pinned
        buffer.

        On the CPU, or for a tensor already on the device, this returns ``images`` itself.
        """
        if self.device.type != "cuda" or images.device.type != "cpu":
            return images
        if (
            self._pinned is None
            or self._pinned.shape != images.shape
            or self._pinned.dtype != images.dtype
        ):
            self._pinned = torch.empty(images.shape, dtype=images.dtype, pin_memory=True)
            self._uploaded = torch.cuda.Event()
        else:
            self._uploaded.synchronize()  # the previous asynchronous copy has left the buffer
        self._pinned.copy_(images)
        on_device = self._pinned.to(self.device, non_blocking=True)
        self._uploaded.record(torch.cuda.current_stream(self.device))
        return on_device

    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        return self.network(self.upload(images), resized_hw)
