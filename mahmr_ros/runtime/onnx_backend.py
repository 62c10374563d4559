"""The onnxruntime backend: the exported stage graphs (``export.py``) in onnxruntime sessions.

The host-side SAT steps run in torch on the CPU between the sessions (numpy views, no copies on the
CPU). Sessions use ``ORT_ENABLE_ALL`` graph optimisation. Providers: the CUDA execution provider is
used when the device is CUDA and onnxruntime offers it (inputs then still travel through host
memory, so the torch or TensorRT backends are the fast GPU paths); otherwise the CPU provider.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mahmr_ros.runtime.backend import BackendError, resolve_device
from mahmr_ros.runtime.export import ensure_export, load_manifest
from mahmr_ros.runtime.staged import StagedNetwork, decoder_output_names
from mahmr_ros.runtime.stages import STAGE_NAMES

LOG = logging.getLogger(__name__)


def make_session(path: str | Path, providers: list[str], num_threads: int | None = None):
    """An onnxruntime session with all graph optimisations; errors name the file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Same thread budget as torch, and no spin-waiting: in the node, ROS executor threads share the
    # cores, and spinning pool threads starved them (measured: 975 ms vs 535 ms for torch,
    # benchmarks/bench_node.py).
    options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except (
        Exception
    ) as err:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise BackendError(f"[runtime.onnxruntime] cannot load {path}: {err}") from err


class OnnxStageRunner:
    """Runs the four stage graphs of an export directory in onnxruntime.

    Args:
        export_dir: directory written by ``export_stages`` (with ``manifest.json``).
        providers: onnxruntime execution providers, in preference order.
        num_threads: intra-op threads per session (None = ``torch.get_num_threads()``).
    """

    requires_masks = True

    def __init__(
        self, export_dir: str | Path, providers: list[str], num_threads: int | None = None
    ):
        manifest = load_manifest(export_dir)
        missing = [s for s in STAGE_NAMES if s not in manifest["stages"]]
        if missing:
            raise BackendError(
                f"[runtime.onnxruntime] {export_dir} lacks stage(s) {missing} (re-export)"
            )
        self.device = torch.device("cpu")
        self.sessions = {
            name: make_session(
                Path(export_dir) / manifest["stages"][name]["file"], providers, num_threads
            )
            for name in STAGE_NAMES
        }
        self.inputs = {name: manifest["stages"][name]["inputs"] for name in STAGE_NAMES}
        self.decoder_outputs = tuple(manifest["stages"]["decoder"]["outputs"])

    def run(self, stage: str, *inputs: Tensor | None) -> tuple[Tensor, ...]:
        feed = {}
        for name, value in zip(self.inputs[stage], inputs):
            if value is None:
                raise BackendError(
                    f"[runtime.onnxruntime] stage {stage}: input {name} is required"
                )
            feed[name] = np.ascontiguousarray(value.detach().cpu().numpy())
        return tuple(torch.from_numpy(out) for out in self.sessions[stage].run(None, feed))

    def synchronize(self) -> None:
        """onnxruntime ``run`` is synchronous."""


class OnnxBackend:
    """``backend: onnxruntime`` — see the module docstring.

    Args:
        model: the loaded network (exported on the fly when ``export_dir`` has no export yet).
        device: ``cpu`` (or ``cuda`` with onnxruntime-gpu).
        precision: ``fp32`` only (the graphs are float32).
        export_dir: directory with the stage graphs (exported there when it has none); None =
            ``export.default_export_dir(model)``, a per-weights cache reused across runs.
        padded_hw: network input size for a fresh export (profiles only; the graphs take any size).
        num_threads: intra-op threads per session (None = ``torch.get_num_threads()``).
        token_bucket: pad the token axis to a multiple of this (1 = no padding, best for
            onnxruntime).
        patch_bucket: same for the number of high-resolution cells.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        export_dir: str | Path | None = None,
        padded_hw: tuple[int, int] | None = None,
        num_threads: int | None = None,
        token_bucket: int = 1,
        patch_bucket: int = 1,
    ):
        import onnxruntime as ort

        if precision != "fp32":
            raise BackendError(
                f"[runtime.onnxruntime] precision {precision} is not supported (fp32 graphs); use "
                "the torch backend for bf16/fp16, or tensorrt for fp16 engines"
            )
        self.device = resolve_device(device)
        self.precision = precision
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(
                    "[runtime.onnxruntime] device cuda requested but this onnxruntime has no CUDA "
                    "execution provider (install onnxruntime-gpu, or use backend torch)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        self.export_dir = ensure_export(model, export_dir, padded_hw)
        self.runner = OnnxStageRunner(self.export_dir, providers, num_threads)
        if self.runner.decoder_outputs != decoder_output_names(model):
            raise BackendError(
                f"[runtime.onnxruntime] {self.export_dir}: decoder outputs differ; re-export"
            )
        self.network = StagedNetwork(model, self.runner, token_bucket, patch_bucket)

    @property
    def timings_ms(self) -> dict[str, float]:
        return self.network.timings_ms

    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        return self.network(images, resized_hw)
