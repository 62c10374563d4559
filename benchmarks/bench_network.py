"""Network latency per stage for 1280x720 frames with 1, 5 and 15 synthetic people, every available backend
and precision, each compared with eager fp32 (``MetricAwareHMR.forward``) measured in the same run.

    tools/env.sh python benchmarks/bench_network.py                      # small config (CPU-friendly)
    tools/env.sh python benchmarks/bench_network.py --config fov_kid     # the released network size
    tools/env.sh python benchmarks/bench_network.py --device cuda --config fov_kid

Synthetic people: weights are random (no checkpoint is available here), so the scale map would select tokens
at random. Instead the scale-map output is replaced on the host by a synthetic map with P person boxes (the
spec §9 "GT path"): cells under a box get confidence 1, and people shorter than 300 px (of 720) get scale 0.4
(< 0.5, so high-resolution tokens) and the others 0.7. Every backend still runs the full scale-map stage;
only its output is overridden, identically for all backends and the eager baseline, so all of them process
the same token counts. Every backend's outputs are also compared with eager fp32 on the CPU (max abs
difference over boxes, confidences, rotations, translations and betas), so a CUDA run checks CUDA against
the CPU. Output: ``benchmarks/results/bench-network-<config>-<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model, preprocess
from mahmr_ros.runtime.backend import BackendError, cpu_has_bf16, cpu_name, create_backend
from mahmr_ros.runtime.staged import TIMING_KEYS

# Configs: "small" keeps the fov_kid layout at 672 px with a ViT-S-width encoder so that the CPU sweep takes
# minutes; "fov_kid" is the released network (ViT-B, 1288 px); "tiny" is the unit-test network.
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
        cx, bottom = rng.uniform(width / 2, FRAME_HW[1] - width / 2), rng.uniform(height, FRAME_HW[0])
        y0, y1 = (bottom - height) * scale / 28, bottom * scale / 28
        x0, x1 = (cx - width / 2) * scale / 28, (cx + width / 2) * scale / 28
        cells = (
            slice(int(y0), max(int(y0) + 1, int(np.ceil(y1)))),
            slice(int(x0), max(int(x0) + 1, int(np.ceil(x1)))),
        )
        smap[0, cells[0], cells[1], 0] = 1.0
        smap[0, cells[0], cells[1], 1] = 0.4 if height < SMALL_PERSON_PX else 0.7
    return smap


class ForcedScaleMap:
    """Wraps a ``StageRunner``: runs the real scale-map stage, then substitutes the synthetic map."""

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


def force_eager(model, scale_map: torch.Tensor):
    """Make the monolithic eager model use the synthetic scale map (instance attribute, bench only)."""
    original = type(model).forward_scale_map.__get__(model)

    def forward_scale_map(images):
        cls1, lvl1, smap = original(images)
        return cls1, lvl1, scale_map.to(smap.device, smap.dtype).expand_as(smap)

    model.forward_scale_map = forward_scale_map


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(runs: dict, device: torch.device, warmup: int, iters: int) -> dict[str, dict]:
    """Time several callables round-robin (one call of each per iteration, so load from other processes
    hits all of them alike); p50/p90 of the total and, where given, of every stage (ms).

    Args:
        runs: label -> (fn, stage_times or None); ``stage_times()`` returns the last call's stage times.
    """
    for _ in range(warmup):
        for fn, _ in runs.values():
            fn()
    totals = {label: [] for label in runs}
    stages = {label: {k: [] for k in TIMING_KEYS} for label in runs}
    for _ in range(iters):
        for label, (fn, stage_times) in runs.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            totals[label].append((time.perf_counter() - start) * 1e3)
            if stage_times is not None:
                for key, value in stage_times().items():
                    stages[label][key].append(value)
    results = {}
    for label, values in totals.items():
        result = {"p50_ms": float(np.percentile(values, 50)), "p90_ms": float(np.percentile(values, 90))}
        result["fps"] = 1e3 / float(np.mean(values))
        if runs[label][1] is not None:
            result["stages"] = {
                k: {"p50_ms": float(np.percentile(v, 50)), "p90_ms": float(np.percentile(v, 90))}
                for k, v in stages[label].items()
            }
        results[label] = result
    return results


def max_abs_diff(out: dict, reference: dict) -> float:
    """Largest |difference| over the main outputs (boxes, confidences, rotations, translations, betas)."""
    keys = ("pred_boxes", "pred_confs", "pred_rotmats", "pred_transl", "pred_betas")
    return max(float((out[k].detach().float().cpu() - reference[k]).abs().max()) for k in keys)


def variants(device: torch.device, include_compile: bool) -> list[tuple[str, str, dict]]:
    """(backend, precision, options) to try on this device; unavailable ones are reported and skipped."""
    if device.type == "cuda":
        out = [("torch", "fp32", {}), ("torch", "fp16", {}), ("torch", "bf16", {})]
        if include_compile:
            out.append(("torch", "fp16", {"compile": True}))
        out += [("onnxruntime", "fp32", {}), ("tensorrt", "fp16", {})]
        return out
    out = [("torch", "fp32", {}), ("onnxruntime", "fp32", {})]
    out.append(("torch", "bf16", {}))
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = cpu_name()
    threads = torch.get_num_threads()
    return f"{name} ({threads} thread{'s' if threads > 1 else ''}{', native bf16' if cpu_has_bf16() else ''})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--people", default="1,5,15", help="comma-separated people counts")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime intra-op threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(CONFIGS[args.config])
    cfg = model.cfg
    frame = np.random.default_rng(0).integers(0, 255, (*FRAME_HW, 3), dtype=np.uint8)
    image, meta = preprocess(frame, cfg.input_size)
    images, resized_hw = image[None].to(device), torch.tensor([meta.resized_hw])
    scale = cfg.input_size / FRAME_HW[1]
    export_dir = tempfile.TemporaryDirectory(prefix="bench_onnx_")

    # CPU eager fp32 references (before any backend moves the model): every backend's output is compared with
    # them, so a CUDA run also checks CUDA against CPU.
    people_counts = [int(p) for p in args.people.split(",")]
    references = {}
    for people in people_counts:
        force_eager(model, synthetic_scale_map(people, meta.padded_hw, scale, seed=people))
        with torch.inference_mode():
            references[people] = model(images.cpu(), resized_hw)
        del model.forward_scale_map

    backends = {}
    skipped = {}
    if device.type == "cpu":
        skipped["tensorrt fp16"] = "needs a CUDA device (and TensorRT, which cannot be installed here)"
        skipped["torch fp16"] = "no fast fp16 kernels on the CPU (bf16 is the CPU's reduced precision)"
    for backend, precision, options in variants(device, args.compile):
        label = f"{backend} {precision}" + (" compile" if options.get("compile") else "")
        extra = dict(options)
        if backend == "onnxruntime":
            extra.update(export_dir=export_dir.name, padded_hw=meta.padded_hw, num_threads=args.threads)
        try:
            backends[label] = create_backend(model, backend, precision, device, **extra)
        except (BackendError, ImportError) as err:
            skipped[label] = str(err)
            print(f"skip {label}: {err}", file=sys.stderr)

    rows = []
    for people in people_counts:
        smap = synthetic_scale_map(people, meta.padded_hw, scale, seed=people)
        eager_model = model.to(device)
        force_eager(eager_model, smap)
        with torch.inference_mode():
            tokens = int(eager_model(images, resized_hw)["sat"]["num_tokens"][0])

        def eager_call():
            with torch.inference_mode():
                eager_model(images, resized_hw)

        runs = {"eager fp32": (eager_call, None)}
        for label, backend in backends.items():
            network = backend.network
            network.runner = ForcedScaleMap(getattr(network.runner, "runner", network.runner), smap)
            runs[label] = (
                lambda backend=backend: backend(images, resized_hw),
                lambda backend=backend: dict(backend.timings_ms),
            )
        results = measure(runs, device, args.warmup, args.iters)
        for label, (fn, _) in runs.items():
            with torch.inference_mode():
                out = eager_model(images, resized_hw) if label == "eager fp32" else fn()
            results[label]["max_abs_diff_vs_cpu_fp32"] = max_abs_diff(out, references[people])
        del eager_model.forward_scale_map  # back to the class method
        base = results["eager fp32"]["p50_ms"]
        for label, result in results.items():
            name, precision = label.split(" ", 1)
            if label != "eager fp32":
                result["speedup_vs_eager_fp32"] = base / result["p50_ms"]
            rows.append(
                {"people": people, "backend": name, "precision": precision, "tokens": tokens, **result}
            )
            print(
                f"{people:2d} people ({tokens} tokens) {label:16s} {result['p50_ms']:9.1f} ms  "
                f"x{base / result['p50_ms']:.2f}"
            )

    report = {
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "config": args.config,
        "model": {"input_size": cfg.input_size, "encoder": cfg.encoder, "embed_dim": cfg.embed_dim},
        "frame": f"{FRAME_HW[1]}x{FRAME_HW[0]}",
        "padded_hw": list(meta.padded_hw),
        "warmup": args.warmup,
        "iters": args.iters,
        "skipped": skipped,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-network-{args.config}-{_slug(report['device'] if device.type == 'cuda' else 'cpu')}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    """The README table: total and per-stage p50/p90 per backend and people count, with the speed-up."""
    model, (Hp, Wp) = report["model"], report["padded_hw"]
    lines = [
        f"Device: {report['device']}; torch {report['torch']}, onnxruntime {report['onnxruntime']}; config "
        f"`{report['config']}` (input {model['input_size']} px, {model['encoder']}); frame "
        f"{report['frame']} -> {Wp}x{Hp}; {report['iters']} iterations "
        f"after {report['warmup']} warm-up. Times in ms, p50 / p90.",
        "",
        "| people | tokens | backend | precision | total | speed-up vs eager fp32 | fps | "
        "max abs diff vs CPU fp32 | " + " | ".join(TIMING_KEYS) + " |",
        "|---:|---:|---|---|---:|---:|---:|---:|" + "---:|" * len(TIMING_KEYS),
    ]
    for row in report["rows"]:
        stages = row.get("stages", {})
        cells = [
            f"{stages[k]['p50_ms']:.1f} / {stages[k]['p90_ms']:.1f}" if k in stages else "–"
            for k in TIMING_KEYS
        ]
        speedup = (
            f"{row['speedup_vs_eager_fp32']:.2f}x" if "speedup_vs_eager_fp32" in row else "1.00x (baseline)"
        )
        diff = f"{row['max_abs_diff_vs_cpu_fp32']:.1e}" if "max_abs_diff_vs_cpu_fp32" in row else "–"
        lines.append(
            f"| {row['people']} | {row['tokens']} | {row['backend']} | {row['precision']} | "
            f"{row['p50_ms']:.1f} / {row['p90_ms']:.1f} | {speedup} | {row['fps']:.2f} | {diff} | "
            + " | ".join(cells)
            + " |"
        )
    if report["skipped"]:
        lines += ["", "Not run here:"] + [f"- {k}: {v}" for k, v in report["skipped"].items()]
    return "\n".join(lines) + "\n"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "absent"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


if __name__ == "__main__":
    sys.exit(main())
