"""One interface over the inference backends, and the ``auto`` choice (parameters ``model.backend``
/ ``model.precision``).

A backend is called exactly like ``MetricAwareHMR.forward`` — ``backend(images, resized_hw) ->
dict`` with the same ``pred_*`` / ``sat`` outputs, float32 — and keeps the per-stage wall times of
its last call in ``timings_ms``. Build it AFTER loading the weights (stage graphs cache position
tables, engines are built from the exported weights).

| backend         | devices        | precisions       | notes                                   |
|-----------------|----------------|------------------|-----------------------------------------|
| ``torch``       | CPU, CUDA      | fp32, bf16, fp16 | autocast, SDPA, optional torch.compile  |
|                 |                | on CUDA          |                                         |
| ``onnxruntime`` | CPU (CUDA EP)  | fp32             | the exported stage graphs, all graph    |
|                 |                |                  | optimisations                           |
| ``tensorrt``    | CUDA           | fp32, fp16, bf16 | engines from the same graphs; TensorRT  |
|                 |                |                  | is NOT installable in this project's CI |
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from mahmr_ros.device import resolve_device as _resolve_device

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
# Accepted spellings of the same backends (e.g. the node parameter description says "onnx").
BACKEND_ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "trt": "tensorrt"}
PRECISIONS = ("fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class BackendError(RuntimeError):
    """A backend cannot be built or run here; the message says why and what to use instead."""


@runtime_checkable
class Backend(Protocol):
    """What every backend provides (see the module docstring)."""

    name: str
    precision: str
    device: torch.device
    timings_ms: dict[str, float]

    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict: ...


@dataclass(frozen=True)
class Platform:
    """What this machine offers, as plain data so that ``select_backend`` is a pure function.

    Attributes:
        device: ``"cpu"`` or ``"cuda"`` (the device the network will run on).
        gpu_name: CUDA device name, or None.
        cpu_bf16: the CPU has native bf16 matmul (AVX512-BF16 or AMX).
        onnxruntime: onnxruntime is importable.
        tensorrt: the TensorRT Python package is importable.
    """

    device: str
    gpu_name: str | None = None
    cpu_bf16: bool = False
    onnxruntime: bool = False
    tensorrt: bool = False


def cpu_name() -> str:
    """The CPU model name (``model name`` in /proc/cpuinfo), for benchmark reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bf16 (``avx512_bf16`` or ``amx_bf16`` in
    /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``mahmr_ros.device.resolve_device`` for the backends: a device that cannot run is a
    BackendError."""
    try:
        return _resolve_device(device, where="runtime")
    except ValueError as err:
        raise BackendError(str(err)) from err


def detect_platform(device: str | torch.device = "auto") -> Platform:
    """Probe the machine (imports nothing heavy: TensorRT is only looked up, not imported)."""
    dev = resolve_device(device)
    return Platform(
        device=dev.type,
        gpu_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        cpu_bf16=cpu_has_bf16(),
        onnxruntime=importlib.util.find_spec("onnxruntime") is not None,
        tensorrt=importlib.util.find_spec("tensorrt") is not None,
    )


def select_backend(precision: str, platform: Platform) -> tuple[str, str]:
    """The ``auto`` rule: the fastest backend available for this precision, and why.

    The order comes from ``benchmarks/bench_network.py`` (results in ``benchmarks/results/``): on
    CUDA, TensorRT engines when TensorRT exists, otherwise torch with autocast + SDPA. On the CPU,
    torch: for the full-size network onnxruntime fp32 was SLOWER than eager torch (0.65x at the
    typical token count; its exported attention materialises the N x N scores, torch's SDPA kernel
    does not), and reduced precision on the CPU is torch's bf16 autocast (onnxruntime has no fast
    bf16 CPU kernels). onnxruntime stays available by name (``backend: onnxruntime``); on small
    networks it can be the faster one.

    Returns:
        (backend name, human-readable reason).
    """
    if precision not in PRECISIONS:
        raise BackendError(
            f"[runtime] unknown precision '{precision}' (known: {', '.join(PRECISIONS)})"
        )
    if platform.device == "cuda":
        if platform.tensorrt:
            return (
                "tensorrt",
                f"CUDA device {platform.gpu_name} and TensorRT importable: {precision} engines",
            )
        return "torch", (
            f"CUDA device {platform.gpu_name} but TensorRT is not importable: torch CUDA "
            f"{precision} (autocast, SDPA attention)"
        )
    if precision == "fp16":
        raise BackendError(
            "[runtime] fp16 on the CPU is not supported (no fast kernels); use bf16 or fp32"
        )
    if precision == "bf16":
        why = (
            "native bf16 in this CPU"
            if platform.cpu_bf16
            else "no native bf16 in this CPU: expect it slow"
        )
        return "torch", f"CPU bf16: torch autocast ({why})"
    hint = (
        " (this CPU has native bf16: model.precision bf16 is the fast path)"
        if platform.cpu_bf16
        else ""
    )
    return "torch", f"CPU fp32: staged torch with SDPA attention{hint}"


def create_backend(
    model,
    backend: str = "auto",
    precision: str = "fp32",
    device: str | torch.device = "auto",
    **options,
) -> Backend:
    """Build the requested backend around a loaded ``MetricAwareHMR``.

    Args:
        model: the network with weights loaded (it is moved to the device by the torch backend).
        backend: ``auto`` / ``torch`` / ``onnxruntime`` / ``tensorrt`` (aliases ``onnx``, ``ort``,
            ``trt``).
        precision: ``fp32`` / ``fp16`` / ``bf16``.
        device: ``auto`` / ``cpu`` / ``cuda[:i]``.
        **options: passed to the backend class (e.g. ``export_dir``, ``cache_dir``,
            ``token_bucket``, ``compile``, ``num_threads``).

    Raises:
        BackendError: unknown name or precision, or the backend cannot run here (the message says
            why).
    """
    backend = BACKEND_ALIASES.get(backend, backend)
    if backend not in BACKENDS:
        raise BackendError(f"[runtime] unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    if precision not in PRECISIONS:
        raise BackendError(
            f"[runtime] unknown precision '{precision}' (known: {', '.join(PRECISIONS)})"
        )
    dev = resolve_device(device)
    if backend == "auto":
        backend, reason = select_backend(precision, detect_platform(dev))
        LOG.info("[runtime] backend auto -> %s: %s", backend, reason)
    if backend == "torch":
        from mahmr_ros.runtime.torch_backend import TorchBackend

        return TorchBackend(model, device=dev, precision=precision, **options)
    if backend == "onnxruntime":
        from mahmr_ros.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(model, device=dev, precision=precision, **options)
    from mahmr_ros.runtime.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(model, device=dev, precision=precision, **options)
