"""The TensorRT backend: engines built from the verified ONNX stages, I/O as torch CUDA tensors,
one stream.

TensorRT CANNOT be installed in this project's environments (the PyPI ``tensorrt`` packages are
stubs that download from NVIDIA's index, which is unreachable; see ``shared/spec/environment.md``).
This module is therefore written against the documented TensorRT 10 Python API (``trt.Builder``,
``trt.OnnxParser``, optimization profiles, ``BuilderFlag.FP16/BF16``, timing cache,
``IExecutionContext.set_tensor_address`` + ``execute_async_v3``) and has never been executed here.
What IS verified in CI is everything around it: the ONNX graphs it parses
(``export.verify_export``: checker, TensorRT op rules, profile-bounded axes), the optimization
profiles (``stage_profiles``) and the engine cache keys (``engine_cache.py``). The module imports
cleanly without TensorRT; building or running raises ``BackendError`` saying so.

Data flow per frame: the host-side SAT steps (torch on the GPU) and the four engines all run on one
CUDA stream, so no synchronisation is needed between them; outputs are torch tensors that stay on
the GPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from mahmr_ros.runtime.backend import BackendError, resolve_device
from mahmr_ros.runtime.engine_cache import EngineCache, EngineKey, profile_tuple
from mahmr_ros.runtime.export import ensure_export, load_manifest, verify_export
from mahmr_ros.runtime.staged import StagedNetwork, bucket, decoder_output_names
from mahmr_ros.runtime.stages import STAGE_NAMES

LOG = logging.getLogger(__name__)

NOT_AVAILABLE = (
    "[runtime.tensorrt] TensorRT is not importable here ({err}). It cannot be installed from PyPI "
    "in this project's environments (the wheels download from NVIDIA's index); install TensorRT "
    "10 from NVIDIA on the target machine, or use backend 'torch' (CUDA fp16/bf16) or "
    "'onnxruntime'"
)


def import_tensorrt():
    """``import tensorrt`` or a ``BackendError`` that says why it is missing and what to use
    instead."""
    try:
        import tensorrt as trt
    except Exception as err:  # ImportError, or OSError from a bindings wheel without its .so files
        raise BackendError(NOT_AVAILABLE.format(err=f"{type(err).__name__}: {err}")) from err
    return trt


def tensorrt_available() -> bool:
    """True when ``import tensorrt`` works."""
    try:
        import_tensorrt()
    except BackendError:
        return False
    return True


def stage_profiles(
    manifest: dict,
    padded_hw: tuple[int, int] | None = None,
    token_bucket: int = 1,
    patch_bucket: int = 1,
) -> dict[str, dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]]:
    """TensorRT optimization profiles (min, opt, max shapes) for every dynamic stage input.

    The scale-map stage is pinned to the camera's network input (min = opt = max = (1, 3, Hp, Wp)),
    so its engine is static; the token axes are bounded by the SAT limits of that input size
    (``token_limits`` in the manifest), with the maxima rounded up to the padding buckets the
    runtime uses.

    Args:
        manifest: an export manifest (``export.load_manifest``).
        padded_hw: (Hp, Wp) to pin the scale-map stage to; None = the manifest's.
        token_bucket: token-axis padding multiple used at run time.
        patch_bucket: hr-cell padding multiple used at run time.

    Returns:
        stage -> input name -> (min, opt, max) shape tuples.
    """
    cfg = manifest["config"]
    C, D = cfg["embed_dim"], cfg["hidden_dim"]
    cell = 2 * cfg["patch_size"]
    Hp, Wp = padded_hw if padded_hw is not None else manifest["padded_hw"]
    limits = manifest["token_limits"]
    if tuple(manifest["padded_hw"]) != (Hp, Wp):
        G1 = (Hp // cell) * (Wp // cell)
        limits = {
            "M": (1, max(1, G1 // 5), G1),
            "N": (1, G1, 5 * G1),
            "T": (2, G1 + 1, 5 * G1 + 1),
        }
    m_min, m_opt, m_max = limits["M"]
    n_min, n_opt, n_max = limits["N"]
    m_opt, m_max = bucket(m_opt, patch_bucket), bucket(m_max, patch_bucket)
    n_min, n_opt, n_max = (bucket(n, token_bucket) for n in (n_min, n_opt, n_max))

    def per_token(width: int, lo: int, mid: int, hi: int, rest: tuple[int, ...] = ()):
        return ((width, lo, *rest), (width, mid, *rest), (width, hi, *rest))

    image = (1, 3, Hp, Wp)
    return {
        "scale_map": {"images": (image, image, image)},
        "lvl0": {
            "patches": ((m_min, 3, cell, cell), (m_opt, 3, cell, cell), (m_max, 3, cell, cell)),
            "pos_index": ((m_min, 4), (m_opt, 4), (m_max, 4)),
            "patch_valid": ((m_min,), (m_opt,), (m_max,)),
        },
        "encoder": {
            "tokens": per_token(1, n_min + 1, n_opt + 1, n_max + 1, (C,)),
            "token_valid": per_token(1, n_min + 1, n_opt + 1, n_max + 1),
        },
        "decoder": {
            "memory": per_token(1, n_min, n_opt, n_max, (D,)),
            "memory_pos": per_token(1, n_min, n_opt, n_max, (D,)),
            "memory_valid": per_token(1, n_min, n_opt, n_max),
        },
    }


def build_engine(
    onnx_path: str | Path,
    profile: dict[str, tuple],
    precision: str,
    timing_cache: bytes = b"",
    workspace_bytes: int | None = None,
) -> tuple[bytes, bytes]:
    """Parse an ONNX stage and build a serialized engine (TensorRT 10 API).

    Args:
        onnx_path: the stage graph.
        profile: input name -> (min, opt, max) shapes.
        precision: ``fp32`` / ``fp16`` / ``bf16`` (builder flags; I/O stays float32/bool/int32).
        timing_cache: serialized timing cache from earlier builds (b"" = start empty).
        workspace_bytes: memory-pool limit for tactics (None = TensorRT's default).

    Returns:
        (serialized engine, updated serialized timing cache).
    """
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"[runtime.tensorrt] cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    if workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    opt_profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in profile.items():
        opt_profile.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(opt_profile)
    cache = config.create_timing_cache(timing_cache)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"[runtime.tensorrt] engine build failed for {onnx_path} ({precision})")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def build_engines(
    export_dir: str | Path,
    precision: str = "fp16",
    cache_dir: str | Path | None = None,
    padded_hw: tuple[int, int] | None = None,
    token_bucket: int = 64,
    patch_bucket: int = 16,
    force_engine_update: bool = False,
    device: torch.device | None = None,
) -> dict[str, bytes]:
    """Load or build the four engines of an export directory through the engine cache.

    Returns:
        stage -> serialized engine.

    Raises:
        BackendError: no TensorRT / no CUDA, or the ONNX stages fail verification (problems
            listed).
    """
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendError("[runtime.tensorrt] TensorRT needs a CUDA device; torch sees none")
    problems = {k: v for k, v in verify_export(export_dir).items() if v}
    if problems:
        raise BackendError(
            f"[runtime.tensorrt] ONNX stages in {export_dir} fail verification: {problems}"
        )
    manifest = load_manifest(export_dir)
    profiles = stage_profiles(manifest, padded_hw, token_bucket, patch_bucket)
    gpu = torch.cuda.get_device_name(device)
    cache = EngineCache(cache_dir)
    timing_path = cache.timing_cache_path(gpu, trt.__version__)
    timing = timing_path.read_bytes() if timing_path.is_file() else b""
    engines = {}
    for stage in STAGE_NAMES:
        entry = manifest["stages"][stage]
        key = EngineKey(
            stage, gpu, trt.__version__, entry["sha256"], precision, profile_tuple(profiles[stage])
        )
        data = None if force_engine_update else cache.load(key)
        if data is None:
            LOG.info("[runtime.tensorrt] building %s engine (%s) for %s", stage, precision, gpu)
            data, timing = build_engine(
                Path(export_dir) / entry["file"], profiles[stage], precision, timing
            )
            LOG.info("[runtime.tensorrt] engine saved to %s", cache.store(key, data))
            cache.store_timing_cache(timing_path, timing)
        else:
            LOG.info("[runtime.tensorrt] cached %s engine: %s", stage, cache.path_for(key))
        engines[stage] = data
    return engines


class TensorRTStageRunner:
    """Executes deserialized engines with torch CUDA tensors as I/O buffers on the current torch
    stream.

    Args:
        engines: stage -> serialized engine.
        device: the CUDA device.
        outputs: stage -> output names in graph order (the manifest's; engines do not promise an
            order).
    """

    requires_masks = True

    def __init__(
        self, engines: dict[str, bytes], device: torch.device, outputs: dict[str, list[str]]
    ):
        trt = import_tensorrt()
        self._trt = trt
        self.device = device
        self.decoder_outputs = tuple(outputs["decoder"])
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines, self.contexts, self.io = {}, {}, {}
        for stage, data in engines.items():
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise BackendError(
                    f"[runtime.tensorrt] cannot deserialize the {stage} engine (rebuild it)"
                )
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            missing = sorted(set(outputs[stage]) - set(names))
            if missing:
                raise BackendError(
                    f"[runtime.tensorrt] the {stage} engine lacks outputs {missing} (rebuild it)"
                )
            self.engines[stage] = engine
            self.contexts[stage] = engine.create_execution_context()
            self.io[stage] = (inputs, list(outputs[stage]))

    def _torch_dtype(self, trt_dtype) -> torch.dtype:
        trt = self._trt
        table = {
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.bfloat16: torch.bfloat16,
            trt.int32: torch.int32,
            trt.int64: torch.int64,
            trt.bool: torch.bool,
        }
        return table[trt_dtype]

    def run(self, stage: str, *inputs: Tensor | None) -> tuple[Tensor, ...]:
        engine, context = self.engines[stage], self.contexts[stage]
        input_names, output_names = self.io[stage]
        keep = []  # references that must outlive the asynchronous execution
        for name, value in zip(input_names, inputs):
            if value is None:
                raise BackendError(f"[runtime.tensorrt] stage {stage}: input {name} is required")
            tensor = value.to(
                self.device, self._torch_dtype(engine.get_tensor_dtype(name))
            ).contiguous()
            if not context.set_input_shape(name, tuple(tensor.shape)):
                raise BackendError(
                    f"[runtime.tensorrt] {stage} input {name} shape {tuple(tensor.shape)} is "
                    "outside the engine's profile (camera size changed? rebuild: build-engine "
                    "--image-size WxH)"
                )
            context.set_tensor_address(name, tensor.data_ptr())
            keep.append(tensor)
        results = {}
        for name in output_names:
            shape = tuple(context.get_tensor_shape(name))
            out = torch.empty(
                shape, dtype=self._torch_dtype(engine.get_tensor_dtype(name)), device=self.device
            )
            context.set_tensor_address(name, out.data_ptr())
            results[name] = out
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"[runtime.tensorrt] execution of the {stage} engine failed")
        return tuple(results[name] for name in output_names)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)


class TensorRTBackend:
    """``backend: tensorrt`` — see the module docstring.

    Args:
        model: the loaded network (exported on the fly if ``export_dir`` has no export).
        device: a CUDA device.
        precision: ``fp16`` (default choice on GPUs), ``bf16`` or ``fp32`` builder precision.
        export_dir: directory with the verified ONNX stages (exported there when it has none); None
            = ``export.default_export_dir(model)``.
        cache_dir: engine cache directory (``engine_cache.default_cache_dir()`` when None).
        padded_hw: network input size of the camera (pins the scale-map engine; default from the
            export).
        token_bucket: token-axis padding multiple (bounds the number of distinct shapes per
            engine).
        patch_bucket: hr-cell padding multiple.
        force_engine_update: rebuild engines even when cached.
    """

    name = "tensorrt"

    def __init__(
        self,
        model,
        device: str | torch.device = "cuda",
        precision: str = "fp16",
        export_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        padded_hw: tuple[int, int] | None = None,
        token_bucket: int = 64,
        patch_bucket: int = 16,
        force_engine_update: bool = False,
    ):
        import_tensorrt()
        self.device = resolve_device(device)
        if self.device.type != "cuda":
            raise BackendError(f"[runtime.tensorrt] needs a CUDA device, got '{self.device}'")
        self.precision = precision
        export_dir = ensure_export(model, export_dir, padded_hw)
        engines = build_engines(
            export_dir,
            precision,
            cache_dir,
            padded_hw,
            token_bucket,
            patch_bucket,
            force_engine_update,
            self.device,
        )
        manifest = load_manifest(export_dir)
        outputs = {stage: manifest["stages"][stage]["outputs"] for stage in STAGE_NAMES}
        if tuple(outputs["decoder"]) != decoder_output_names(model):
            raise BackendError(
                f"[runtime.tensorrt] {export_dir}: decoder outputs differ from the model; "
                "re-export"
            )
        self.runner = TensorRTStageRunner(engines, self.device, outputs)
        self.stream = torch.cuda.Stream(self.device)
        self.network = StagedNetwork(model, self.runner, token_bucket, patch_bucket)

    @property
    def timings_ms(self) -> dict[str, float]:
        return self.network.timings_ms

    def __call__(self, images: Tensor, resized_hw: Tensor) -> dict:
        # One stream for the host-side SAT ops and every engine: ordering without extra
        # synchronisation.
        caller = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(caller)  # inputs may still be in flight on the caller's stream
        with torch.cuda.stream(self.stream):
            out = self.network(images, resized_hw)
        caller.wait_stream(self.stream)
        return out
