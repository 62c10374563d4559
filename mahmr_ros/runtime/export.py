"""Staged ONNX export: each stage of ``stages.py`` to its own graph, plus a manifest with profile
bounds.

Layout of an export directory (one per network config + weights; every camera resolution it can
serve)::

    <dir>/scale_map.onnx   images (1,3,56h,56w)                       -> cls1, lvl1, scale_map
    <dir>/lvl0.onnx        patches (M,3,28,28), pos_index (M,4) int32, patch_valid (M,) bool
                                                                      -> lvl0_tokens
    <dir>/encoder.onnx     tokens (1,T,C), token_valid (1,T) bool     -> memory (1,T-1,D),
                                                                         cls_out (1,C)
    <dir>/decoder.onnx     memory (1,N,D), memory_pos (1,N,D), memory_valid (1,N) bool,
                           cls_out, resized_hw                        -> pred_*
    <dir>/manifest.json    config, opset, dynamic axes, per-stage sha256,
                           TensorRT optimization profiles

Only the symbols listed in ``STAGE_SPECS`` are dynamic; ``verify_export`` checks each graph with
``onnx.checker`` (full check), the TensorRT parser rules (``trt_ops.py``) and that every dynamic
axis is one a profile bounds. Exports use the torch.export-based exporter (``dynamo=True``), opset
18 by default.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch.export import Dim

from mahmr_ros.model.network import MetricAwareHMR
from mahmr_ros.runtime.staged import decoder_output_names
from mahmr_ros.runtime.stages import STAGE_NAMES, build_stages
from mahmr_ros.runtime.trt_ops import check_tensorrt_compatible

LOG = logging.getLogger(__name__)

DEFAULT_OPSET = 18
MIN_OPSET = 17
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StageSpec:
    """I/O of one stage graph.

    Attributes:
        inputs: graph input names, in call order.
        outputs: graph output names (the decoder's depend on the config, see ``stage_specs``).
        dynamic: input name -> {axis: symbol}; all other axes are static.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]


def stage_specs(model: MetricAwareHMR) -> dict[str, StageSpec]:
    """The four stages' I/O for this network config."""
    return {
        "scale_map": StageSpec(
            ("images",), ("cls1", "lvl1", "scale_map"), {"images": {2: "Hp", 3: "Wp"}}
        ),
        "lvl0": StageSpec(
            ("patches", "pos_index", "patch_valid"),
            ("lvl0_tokens",),
            {"patches": {0: "M"}, "pos_index": {0: "M"}, "patch_valid": {0: "M"}},
        ),
        "encoder": StageSpec(
            ("tokens", "token_valid"),
            ("memory", "cls_out"),
            {"tokens": {1: "T"}, "token_valid": {1: "T"}},
        ),
        "decoder": StageSpec(
            ("memory", "memory_pos", "memory_valid", "cls_out", "resized_hw"),
            decoder_output_names(model),
            {"memory": {1: "N"}, "memory_pos": {1: "N"}, "memory_valid": {1: "N"}},
        ),
    }


def token_limits(
    model: MetricAwareHMR, padded_hw: tuple[int, int]
) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of each dynamic token symbol for one network input size (spec §1.5 token
    counts).

    With G1 lvl1 cells: M (hr cells) <= G1; N <= 5 G1 (every cell hr, plus the official quirk
    keeping them as lvl1 too); N >= G1/4 (all background). The optimum is the spec's "typical" 16:9
    frame: 20 % of the area small people (M ~ G1/5) and N ~ G1.
    """
    cell = 2 * model.cfg.patch_size
    G1 = (padded_hw[0] // cell) * (padded_hw[1] // cell)
    return {
        "M": (1, max(1, G1 // 5), G1),
        "N": (1, G1, 5 * G1),
        "T": (2, G1 + 1, 5 * G1 + 1),
    }


def example_inputs(
    model: MetricAwareHMR, padded_hw: tuple[int, int]
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Tracing inputs for each stage (sizes chosen away from 0/1 so no axis gets specialised)."""
    cfg = model.cfg
    C, D = cfg.embed_dim, cfg.hidden_dim
    gen = torch.Generator().manual_seed(0)
    Hp, Wp = padded_hw
    M, N = 3, 7
    return {
        "scale_map": (torch.randn(1, 3, Hp, Wp, generator=gen),),
        "lvl0": (
            torch.randn(M, 3, 2 * cfg.patch_size, 2 * cfg.patch_size, generator=gen),
            torch.randint(0, cfg.grid_lvl0**2, (M, 4), generator=gen, dtype=torch.int32),
            torch.tensor([True] * (M - 1) + [False]),
        ),
        "encoder": (torch.randn(1, N + 1, C, generator=gen), torch.tensor([[True] * N + [False]])),
        "decoder": (
            torch.randn(1, N, D, generator=gen),
            torch.randn(1, N, D, generator=gen),
            torch.tensor([[True] * (N - 1) + [False]]),
            torch.randn(1, C, generator=gen),
            torch.tensor([[float(Hp), float(Wp)]]),
        ),
    }


def _dims(model: MetricAwareHMR, spec: StageSpec) -> dict[str, dict[int, object] | None]:
    """torch.export dynamic_shapes for one stage (network input sides are multiples of 56)."""
    cfg = model.cfg
    step = 4 * cfg.patch_size
    limit = 5 * cfg.grid_lvl1**2 + 1
    symbols = {
        "Hp": step * Dim("Hp_div", min=1, max=cfg.input_size // step),
        "Wp": step * Dim("Wp_div", min=1, max=cfg.input_size // step),
        "M": Dim("M", min=1, max=cfg.grid_lvl1**2),
        "T": Dim("T", min=2, max=limit),
        "N": Dim("N", min=1, max=limit - 1),
    }
    dims: dict[str, dict[int, object] | None] = dict.fromkeys(spec.inputs)
    for name, axes in spec.dynamic.items():
        dims[name] = {axis: symbols[sym] for axis, sym in axes.items()}
    return dims


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (used in the manifest and the engine cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(model: MetricAwareHMR) -> str:
    """Hex sha256 over the state_dict (names, shapes, dtypes, values): ties an export to its
    weights."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def default_export_dir(model: MetricAwareHMR) -> Path:
    """Persistent export location for these weights: ``<cache>/mahmr_ros/onnx/<weights
    sha256[:16]>``.

    ``<cache>`` is ``$XDG_CACHE_HOME`` or ``~/.cache``; ``$MAHMR_ONNX_CACHE`` replaces
    ``<cache>/mahmr_ros/onnx``.
    Exporting the released network takes about a minute, so backends export once and reuse it.
    """
    root = os.environ.get("MAHMR_ONNX_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "mahmr_ros", "onnx")
    return Path(root) / weights_sha256(model)[:16]


def export_stages(
    model: MetricAwareHMR,
    out_dir: str | Path,
    padded_hw: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    stages: tuple[str, ...] = STAGE_NAMES,
) -> dict:
    """Export the stages of a loaded network to ONNX and write ``manifest.json``.

    Args:
        model: the network, weights loaded (export runs on a CPU float32 copy if it lives
            elsewhere).
        out_dir: directory for the ``.onnx`` files and the manifest (created).
        padded_hw: (Hp, Wp) network input size the TensorRT profiles are tuned for (the camera's;
            e.g. (728, 1288) for 16:9 at 1288). Default: a 16:9 frame at the model's input size.
        opset: ONNX opset (>= 17; 18 by default).
        stages: which stages to export (all by default).

    Returns:
        The manifest dict (also written to ``out_dir/manifest.json``).

    Raises:
        ValueError: opset < 17, unknown stage name, or a padded size that is not a valid network
            input.
    """
    cfg = model.cfg
    if opset < MIN_OPSET:
        raise ValueError(
            f"[runtime.export] opset {opset} < {MIN_OPSET} (LayerNormalization needs >= 17)"
        )
    unknown = sorted(set(stages) - set(STAGE_NAMES))
    if unknown:
        raise ValueError(
            f"[runtime.export] unknown stage(s) {unknown} (known: {', '.join(STAGE_NAMES)})"
        )
    padded_hw = tuple(padded_hw) if padded_hw is not None else default_padded_hw(cfg.input_size)
    cfg.check_network_hw(padded_hw, "padded_hw")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        model = (
            copy.deepcopy(model).float().cpu()
        )  # export on the CPU in fp32 without moving the caller's
    model.eval()
    modules = build_stages(model)
    specs = stage_specs(model)
    examples = example_inputs(model, padded_hw)
    manifest = {
        "format": 1,
        "opset": opset,
        "config": dataclasses.asdict(cfg),
        "weights_sha256": weights_sha256(model),
        "padded_hw": list(padded_hw),
        "token_limits": token_limits(model, padded_hw),
        "stages": {},
    }
    for name in stages:
        spec = specs[name]
        path = out_dir / f"{name}.onnx"
        LOG.info("[runtime.export] exporting stage %s -> %s", name, path)
        with torch.no_grad():
            program = torch.onnx.export(
                modules[name],
                examples[name],
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                dynamic_shapes=_dims(model, spec),
                dynamo=True,
                opset_version=opset,
                verbose=False,
            )
        program.save(str(path))
        manifest["stages"][name] = {
            "file": path.name,
            "sha256": file_sha256(path),
            "inputs": list(spec.inputs),
            "outputs": list(spec.outputs),
            "dynamic": {k: {str(a): s for a, s in v.items()} for k, v in spec.dynamic.items()},
        }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def default_padded_hw(input_size: int) -> tuple[int, int]:
    """Network input of a 16:9 frame at ``input_size`` (1288 -> (728, 1288)), padded to multiples
    of 56."""
    h = int(input_size * 9 / 16)
    return (-(-h // 56) * 56, input_size)


def ensure_export(
    model: MetricAwareHMR,
    export_dir: str | Path | None = None,
    padded_hw: tuple[int, int] | None = None,
) -> Path:
    """The export directory of this model's weights, exported once when it has no manifest yet.

    Args:
        model: the loaded network.
        export_dir: where the stages live; None = ``default_export_dir(model)``.
        padded_hw: camera network-input size for a fresh export (profiles only).

    Raises:
        BackendError: the export failed (e.g. the directory is not writable) or the directory holds
            an export of other weights; a ``RuntimeError``, so ``auto`` callers can fall back to
            eager torch.
    """
    from mahmr_ros.runtime.backend import BackendError

    export_dir = Path(export_dir) if export_dir is not None else default_export_dir(model)
    if not (export_dir / MANIFEST).is_file():
        LOG.info(
            "[runtime.export] one-time export of the stages to %s (about a minute and 0.9 GB for "
            "the released network; reused afterwards)",
            export_dir,
        )
        try:
            export_stages(model, export_dir, padded_hw=padded_hw)
        except Exception as err:  # torch.onnx / onnx / OS errors alike: say where and what to do
            raise BackendError(
                f"[runtime.export] exporting the stages to {export_dir} failed "
                f"({type(err).__name__}: {err}); set export_dir or MAHMR_ONNX_CACHE to a writable "
                "place, or use backend torch"
            ) from err
    if load_manifest(export_dir).get("weights_sha256") != weights_sha256(model):
        raise BackendError(
            f"[runtime.export] {export_dir} holds an export of other weights or another config "
            "than this model; re-export it (python -m mahmr_ros.cli export-onnx) or pass an "
            "empty directory"
        )
    return export_dir


def load_manifest(export_dir: str | Path) -> dict:
    """Read ``manifest.json`` of an export directory; errors name the missing file and how to
    create it."""
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"[runtime.export] no {MANIFEST} in {export_dir} (create it with `python -m "
            f"mahmr_ros.cli export-onnx --out {export_dir}`)"
        )
    manifest = json.loads(path.read_text())
    for name, entry in manifest.get("stages", {}).items():
        stage_path = Path(export_dir) / entry["file"]
        if not stage_path.is_file():
            raise FileNotFoundError(
                f"[runtime.export] stage {name}: {stage_path} is missing (re-export)"
            )
    return manifest


def verify_export(export_dir: str | Path) -> dict[str, list[str]]:
    """Check every exported stage: ``onnx.checker`` (full), TensorRT parser rules, profile-bounded
    axes, hash.

    Returns:
        stage name -> list of problems (empty lists mean the stage is fine).
    """
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    problems: dict[str, list[str]] = {}
    for name, entry in manifest["stages"].items():
        path = export_dir / entry["file"]
        found: list[str] = []
        if file_sha256(path) != entry["sha256"]:
            found.append(f"{path} changed since export (sha256 mismatch)")
        try:
            model = onnx.load(str(path))
        except (
            Exception
        ) as err:  # protobuf's DecodeError and friends: report, keep checking the others
            problems[name] = found + [f"{path} is not a readable ONNX file: {err}"]
            continue
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as err:
            found.append(f"onnx.checker: {err}")
        opset = max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0
        )
        if opset < MIN_OPSET:
            found.append(f"opset {opset} < {MIN_OPSET}")
        dynamic = {k: {int(a): s for a, s in v.items()} for k, v in entry["dynamic"].items()}
        found += check_tensorrt_compatible(model, dynamic).problems
        problems[name] = found
    return problems
