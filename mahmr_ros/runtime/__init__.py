"""Deployment: the network split into exportable stages, ONNX export, and torch / onnxruntime /
TensorRT backends behind one interface (``create_backend``), with ``auto`` selection.

    from mahmr_ros.runtime import create_backend
    backend = create_backend(model, backend="auto", precision="fp32")   # after load_checkpoint
    raw = backend(images, resized_hw)  # == model(images, resized_hw)
"""

from mahmr_ros.runtime.backend import (
    BACKENDS,
    PRECISIONS,
    Backend,
    BackendError,
    Platform,
    create_backend,
    detect_platform,
    select_backend,
)
from mahmr_ros.runtime.staged import StagedNetwork
from mahmr_ros.runtime.stages import STAGE_NAMES, build_stages

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "STAGE_NAMES",
    "Backend",
    "BackendError",
    "Platform",
    "StagedNetwork",
    "build_stages",
    "create_backend",
    "detect_platform",
    "select_backend",
]
