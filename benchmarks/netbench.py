"""Shared pieces of the network benchmarks (``bench_network.py``, ``bench_node.py``,
``gpu_check.py``).

Synthetic scenes: the weights are seeded, not trained (the official ones are licence-gated), so the
scale map would select tokens at random. Each scene instead REPLACES the scale-map output on the
host by a synthetic map (the spec §9 "GT path"), identically for every backend and the eager
baseline, so all of them process the same tokens:

* ``typical``: the spec's typical 16:9 mix (mahmr_model §9): 2x2 groups of background / small /
  large people in the proportions 160 : 63 : 76, i.e. 1008 lvl0 + 304 lvl1 + 160 lvl2 = 1472 tokens
  at 1288x728;
* ``P`` (an integer): P standing people in a 1280x720 frame, those shorter than 300 px getting
  high-resolution tokens (scale 0.4 < 0.5), the others 0.7.

The real scale-map stage still runs; only its output is overridden. Accuracy helpers compare a
variant with eager fp32 per output head, as SMPL vertices (mm), and as SAT decisions on unforced
frames.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

from mahmr_ros.model import TINY_OVERRIDES, sat
from mahmr_ros.runtime.backend import cpu_has_bf16, cpu_name
from mahmr_ros.runtime.staged import TIMING_KEYS

# "small" keeps the fov_kid layout at 672 px with a ViT-S-width encoder (CPU sweeps in minutes);
# "fov_kid" is the released network (ViT-B, 1288 px); "tiny" is the unit-test network.
CONFIGS = {
    "tiny": {"preset": "fov_kid", **TINY_OVERRIDES},
    "small": {
        "preset": "fov_kid",
        "encoder": "vits",
        "input_size": 672,
        "hidden_dim": 384,
        "nheads": 4,
        "dim_feedforward": 1024,
    },
    "fov_kid": "fov_kid",
}
FRAME_HW = (720, 1280)
SMALL_PERSON_PX = 300  # people shorter than this (of 720 px) get high-resolution tokens
# Output heads compared between a variant and eager fp32 (pred_fov only with a FoV head).
HEADS = (
    "pred_confs",
    "pred_boxes",
    "pred_rotmats",
    "pred_betas",
    "pred_cam",
    "pred_transl",
    "pred_fov",
)
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


# ------------------------------------------------------------------------------------------ scenes
def synthetic_scale_map(
    num_people: int, padded_hw: tuple[int, int], scale: float, seed: int = 0
) -> torch.Tensor:
    """(1, G1h, G1w, 2) scale map with ``num_people`` standing people in a 1280x720 frame.

    Args:
        num_people: people to place (boxes may overlap, as in crowds).
        padded_hw: network input (Hp, Wp); cells are 28 px there.
        scale: network pixels per frame pixel (input_size / 1280).
        seed: layout seed.
    """
    rng = np.random.default_rng(seed)
    G1h, G1w = padded_hw[0] // 28, padded_hw[1] // 28
    smap = torch.zeros(1, G1h, G1w, 2)
    smap[..., 1] = 1.0
    for _ in range(num_people):
        height = rng.uniform(120, 650)
        width = height * 0.4
        cx, bottom = (
            rng.uniform(width / 2, FRAME_HW[1] - width / 2),
            rng.uniform(height, FRAME_HW[0]),
        )
        y0, y1 = (bottom - height) * scale / 28, bottom * scale / 28
        x0, x1 = (cx - width / 2) * scale / 28, (cx + width / 2) * scale / 28
        cells = (
            slice(int(y0), max(int(y0) + 1, int(np.ceil(y1)))),
            slice(int(x0), max(int(x0) + 1, int(np.ceil(x1)))),
        )
        smap[0, cells[0], cells[1], 0] = 1.0
        smap[0, cells[0], cells[1], 1] = 0.4 if height < SMALL_PERSON_PX else 0.7
    return smap


def typical_scale_map(G1h: int, G1w: int, seed: int = 0) -> torch.Tensor:
    """(1, G1h, G1w, 2) scale map of the spec's typical scene: 2x2 groups of background / small /
    large people in the proportions 160 : 63 : 76 (its 1288x728 token counts), placed at random."""
    groups = (G1h // 2) * (G1w // 2)
    counts = np.floor(np.array([160, 63, 76]) / 299 * groups).astype(int)
    counts[0] += groups - counts.sum()
    kinds = np.random.default_rng(seed).permutation(np.repeat([0, 1, 2], counts))
    kinds = kinds.reshape(G1h // 2, G1w // 2).repeat(2, 0).repeat(2, 1)
    conf = np.where(kinds == 0, 0.05, 0.9)
    scale = np.where(kinds == 1, 0.2, 0.8)
    return torch.tensor(np.stack([conf, scale], -1), dtype=torch.float32)[None]


def scene_scale_map(scene: str, padded_hw: tuple[int, int], input_size: int) -> torch.Tensor:
    """The forced scale map of a scene name (``typical`` or a people count, see the module
    docstring)."""
    if scene == "typical":
        return typical_scale_map(padded_hw[0] // 28, padded_hw[1] // 28)
    if not scene.isdigit():
        raise ValueError(f"[bench] unknown scene '{scene}' (typical or a number of people)")
    people = int(scene)
    return synthetic_scale_map(people, padded_hw, input_size / FRAME_HW[1], seed=people)


def scene_tokens(smap: torch.Tensor) -> int:
    """Tokens entering the final encoder blocks for a forced scale map (official quirk on)."""
    return int(sat.select_cells(smap, official_quirk=True).num_tokens()[0])


def test_frames(count: int = 3) -> list[np.ndarray]:
    """``count`` 1280x720 BGR frames of different statistics (noise, smooth gradients, blocks):
    unforced inputs whose real scale maps differ, for the SAT-decision check."""
    rng = np.random.default_rng(7)
    H, W = FRAME_HW
    yy, xx = np.mgrid[0:H, 0:W]
    frames = [
        rng.integers(0, 255, (H, W, 3), dtype=np.uint8),
        np.stack([(xx * 255 // W), (yy * 255 // H), ((xx + yy) * 127 // (H + W))], -1).astype(
            np.uint8
        ),
        np.kron(rng.integers(0, 255, (H // 80, W // 80, 3)), np.ones((80, 80, 1))).astype(
            np.uint8
        ),
    ]
    return frames[:count]


class ForcedScaleMap:
    """Wraps a ``StageRunner``: runs the real scale-map stage, then substitutes the synthetic
    map."""

    def __init__(self, runner, scale_map: torch.Tensor):
        self.runner = runner
        self.scale_map = scale_map
        self.device = runner.device
        self.requires_masks = runner.requires_masks
        self.decoder_outputs = runner.decoder_outputs

    def run(self, stage, *inputs):
        out = self.runner.run(stage, *inputs)
        if stage == "scale_map":
            out = (out[0], out[1], self.scale_map.to(out[2].device, out[2].dtype))
        return out

    def synchronize(self):
        self.runner.synchronize()


class ForcedPeople(ForcedScaleMap):
    """Also forces the decoder's confidences: the first ``people`` queries 0.9, the others 0.05, so
    that the postprocessing, SMPL, DTO and the messages carry exactly ``people`` people (seeded
    weights keep ~all)."""

    def __init__(self, runner, scale_map: torch.Tensor, people: int):
        super().__init__(runner, scale_map)
        self.people = people

    def run(self, stage, *inputs):
        out = super().run(stage, *inputs)
        if stage == "decoder":
            index = self.decoder_outputs.index("pred_confs")
            confs = torch.full_like(out[index], 0.05)
            confs[:, : self.people] = 0.9
            out = out[:index] + (confs,) + out[index + 1 :]
        return out


def force_scene(network, scale_map: torch.Tensor | None) -> None:
    """Point a ``StagedNetwork`` at its own runner wrapped with ``scale_map`` (None = unforced)."""
    base = network.runner
    while isinstance(base, ForcedScaleMap):
        base = base.runner
    network.runner = base if scale_map is None else ForcedScaleMap(base, scale_map)


def force_eager(model, scale_map: torch.Tensor | None) -> None:
    """Make the monolithic eager model use ``scale_map`` (instance attribute; None = back to the
    class)."""
    if "forward_scale_map" in vars(model):
        del model.forward_scale_map
    if scale_map is None:
        return
    original = type(model).forward_scale_map.__get__(model)

    def forward_scale_map(images):
        cls1, lvl1, smap = original(images)
        return cls1, lvl1, scale_map.to(smap.device, smap.dtype).expand_as(smap)

    model.forward_scale_map = forward_scale_map


# ------------------------------------------------------------------------------------------ timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def percentiles(values) -> dict[str, float]:
    """p50 / p90 (ms) of a list of times."""
    return {"p50_ms": float(np.percentile(values, 50)), "p90_ms": float(np.percentile(values, 90))}


def measure(
    runs: dict, device: torch.device, warmup: int, iters: int, deadline: float | None = None
) -> dict:
    """Time several callables round-robin (one call of each per iteration, so load from other
    processes hits all of them alike); p50/p90 of the total and, where given, of every stage (ms).

    Args:
        runs: label -> (fn, stage_times or None); ``stage_times()`` returns the last call's stage
            times.
        deadline: ``time.monotonic()`` after which no new iteration starts (at least one is kept).
    """
    for _ in range(warmup):
        for fn, _ in runs.values():
            fn()
    totals = {label: [] for label in runs}
    stages = {label: {} for label in runs}
    for it in range(iters):
        if it and deadline is not None and time.monotonic() > deadline:
            break
        for label, (fn, stage_times) in runs.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            totals[label].append((time.perf_counter() - start) * 1e3)
            if stage_times is not None:
                for key, value in stage_times().items():
                    stages[label].setdefault(key, []).append(value)
    results = {}
    for label, values in totals.items():
        result = {**percentiles(values), "fps": 1e3 / float(np.mean(values)), "iters": len(values)}
        if stages[label]:
            result["stages"] = {k: percentiles(v) for k, v in stages[label].items()}
        results[label] = result
    return results


# ---------------------------------------------------------------------------------------- accuracy
def head_diffs(out: dict, reference: dict) -> dict[str, float]:
    """Max |difference| per output head (``HEADS`` present in both), on the CPU in float32."""
    return {
        k: float((out[k].detach().float().cpu() - reference[k].detach().float().cpu()).abs().max())
        for k in HEADS
        if k in out and k in reference
    }


def max_abs_diff(out: dict, reference: dict) -> float:
    """Largest |difference| over the main outputs (boxes, confidences, rotations, translations,
    betas)."""
    keys = ("pred_boxes", "pred_confs", "pred_rotmats", "pred_transl", "pred_betas")
    return max(
        float((out[k].detach().float().cpu() - reference[k].float().cpu()).abs().max())
        for k in keys
    )


def top_queries(reference: dict, count: int) -> torch.Tensor:
    """Indices of the ``count`` most confident queries of image 0 of the reference."""
    return reference["pred_confs"][0].float().cpu().argsort(descending=True)[:count]


def vertex_error_mm(body, out: dict, reference: dict, queries: torch.Tensor) -> dict[str, float]:
    """SMPL vertices (rotmats, betas, transl of ``queries``) of a variant vs the reference, in mm.

    Returns:
        ``max_mm`` (worst vertex of any person) and ``median_mm`` (median vertex distance).
    """

    def vertices(raw):
        with torch.no_grad():
            v, _ = body.forward(
                raw["pred_rotmats"][0, queries].float().to(body.device),
                raw["pred_betas"][0, queries].float().to(body.device),
                raw["pred_transl"][0, queries].float().to(body.device),
            )
        return v.double().cpu()

    dist = (vertices(out) - vertices(reference)).norm(dim=-1) * 1e3
    return {"max_mm": float(dist.max()), "median_mm": float(dist.median())}


def sat_flips(out: dict, reference: dict, margin: float = 0.01) -> dict[str, int]:
    """SAT decisions of a variant vs the reference on the same (unforced) frame: cells whose
    high-res decision differs, 2x2 groups whose pooling differs, both token counts, and how many of
    the reference's cells lie within ``margin`` of a threshold (conf 0.3, scale 0.5), where any
    rounding can flip a decision."""
    a, b = out["sat"], reference["sat"]
    result = {
        "hr_cell_flips": int((a["hr_cells"].cpu() != b["hr_cells"].cpu()).sum()),
        "pooled_group_flips": int((a["pooled_groups"].cpu() != b["pooled_groups"].cpu()).sum()),
        "tokens": int(a["num_tokens"][0]),
        "tokens_reference": int(b["num_tokens"][0]),
    }
    if "scale_map" in b:
        smap = b["scale_map"].float().cpu()
        near = ((smap[..., 0] - 0.3).abs() < margin) | ((smap[..., 1] - 0.5).abs() < margin)
        result.update(cells=int(near.numel()), cells_near_threshold=int(near.sum()))
    return result


# ----------------------------------------------------------------------------------------- machine
def cpu_flags() -> list[str]:
    """The vector-extension flags of ``CPU_FLAGS`` that /proc/cpuinfo lists."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            words = set(f.read().split())
    except OSError:
        return []
    return [flag for flag in CPU_FLAGS if flag in words]


def load_average() -> list[float]:
    """1/5/15-minute load average (other processes on the machine inflate CPU timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(device: torch.device) -> dict:
    """Device, CPU, threads and library versions for a result file."""
    info = {
        "device_type": device.type,
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "cpu_native_bf16": cpu_has_bf16(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": version_of("onnxruntime"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
        )
    return info


def device_label(info: dict) -> str:
    """Human-readable device for tables: the GPU, or the CPU with its threads and bf16 support."""
    if info["device_type"] == "cuda":
        return f"{info['gpu']} (CUDA {info['cuda']})"
    threads = info["torch_threads"]
    amx = ", AMX" if "amx_bf16" in info["cpu_flags"] else ""
    bf16 = ", native bf16" if info["cpu_native_bf16"] else ""
    return (
        f"{info['cpu']} ({threads} thread{'s' if threads > 1 else ''} of {info['cores']}"
        f"{bf16}{amx})"
    )


def version_of(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "absent"


def slug(text: str) -> str:
    """Lower-case file-name slug: ``Intel(R) Xeon(R) Processor`` -> ``intel-xeon-processor``."""
    text = text.lower().replace("(r)", "").replace("(tm)", "")
    out = "".join(c if c.isalnum() or c in "._" else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


def stage_columns(rows: list[dict]) -> list[str]:
    """Stage names present in any row, in ``TIMING_KEYS`` order first, then the others as they
    come."""
    seen = [k for k in TIMING_KEYS if any(k in r.get("stages", {}) for r in rows)]
    for row in rows:
        seen += [k for k in row.get("stages", {}) if k not in seen]
    return seen
