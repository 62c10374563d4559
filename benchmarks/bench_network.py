"""The one way to time the MA-HMR network: per stage, every backend and precision, against eager
fp32 measured in the same run (round-robin), with the accuracy of every variant checked in the same
run.

    tools/env.sh python benchmarks/bench_network.py --threads 2  # full-size fov_kid, CPU (~10 min)
    tools/env.sh python benchmarks/bench_network.py --config small --threads 1
    tools/env.sh python benchmarks/bench_network.py --device cuda  # on a GPU (see gpu_check.py)

Scenes (``--scenes``, see ``netbench.py``): ``typical`` = the spec's typical 16:9 token mix (1472
tokens at 1288x728) and 1/5/15/30 synthetic people; the scale map is forced so that every variant
processes the same tokens. Variants on the CPU: eager fp32 (``MetricAwareHMR.forward``, the
baseline), the staged torch fp32 / bf16 backends, onnxruntime fp32, and two int8 CANDIDATES
measured here but not offered as a backend precision (torch dynamic int8 of every Linear,
``torch.ao.quantization.quantize_dynamic``; onnxruntime ``quantize_dynamic`` of the exported
graphs' MatMul/Gemm weights).

Accuracy, per variant against CPU eager fp32: max |diff| per output head and SMPL vertices
(synthetic SMPL-format body, the ``--accuracy-people`` most confident queries) on the forced
``typical`` scene; and the SAT decisions (high-res cells, pooled groups) on three unforced frames.
The weights are SEEDED, not trained: activations, and with them quantisation and rounding errors,
differ from the released network's.

The result name records config, device, threads and library versions; the JSON also records the CPU
flags and the load average before and after (other processes on the machine inflate the times;
ratios measured in the same run are what count). Output:
``benchmarks/results/bench-network-<config>-<device>-<threads>t- torch<ver>-ort<ver>.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netbench  # noqa: E402  (the folder of this script)

from mahmr_ros.model import build_model, postprocess, preprocess  # noqa: E402
from mahmr_ros.runtime.backend import BackendError, create_backend  # noqa: E402
from mahmr_ros.runtime.staged import StagedNetwork  # noqa: E402

# Re-exported for bench_node.py and the tests.
CONFIGS, FRAME_HW = netbench.CONFIGS, netbench.FRAME_HW
ForcedScaleMap, synthetic_scale_map, force_eager = (
    netbench.ForcedScaleMap,
    netbench.synthetic_scale_map,
    netbench.force_eager,
)
CPU_VARIANTS = ("torch fp32", "onnxruntime fp32", "torch bf16", "torch int8", "onnxruntime int8")
CUDA_VARIANTS = (
    "torch fp32",
    "torch fp16",
    "torch bf16",
    "torch fp16 compile",
    "onnxruntime fp32",
)


class CandidateBackend:
    """A bench-only variant: a ``StagedNetwork`` over a given stage runner (same interface as a
    backend)."""

    def __init__(self, name: str, precision: str, model, runner):
        self.name, self.precision, self.device = name, precision, runner.device
        self.network = StagedNetwork(model, runner)

    @property
    def timings_ms(self) -> dict[str, float]:
        return self.network.timings_ms

    def __call__(self, images, resized_hw):
        return self.network(images, resized_hw)


def torch_int8(model) -> CandidateBackend:
    """Candidate: every nn.Linear dynamically quantised to int8 (per-tensor weights, x86
    kernels)."""
    from mahmr_ros.runtime.torch_backend import TorchStageRunner

    quantized = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(model).cpu(), {torch.nn.Linear}, dtype=torch.qint8
    )
    runner = TorchStageRunner(quantized, torch.device("cpu"), "fp32")
    return CandidateBackend("torch", "int8", runner.model, runner)


def onnxruntime_int8(
    model, fp32_dir: Path, int8_dir: Path, threads: int | None
) -> CandidateBackend:
    """Candidate: the exported fp32 graphs, MatMul/Gemm weights quantised to int8 (dynamic
    activations)."""
    import shutil

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mahmr_ros.runtime.export import load_manifest
    from mahmr_ros.runtime.onnx_backend import OnnxStageRunner

    int8_dir.mkdir(parents=True, exist_ok=True)
    for stage in load_manifest(fp32_dir)["stages"].values():
        quantize_dynamic(
            str(fp32_dir / stage["file"]),
            str(int8_dir / stage["file"]),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    shutil.copy(fp32_dir / "manifest.json", int8_dir / "manifest.json")
    runner = OnnxStageRunner(int8_dir, ["CPUExecutionProvider"], threads)
    return CandidateBackend("onnxruntime", "int8", model, runner)


def build_variants(
    model, device, names, export_dir: Path, padded_hw, threads
) -> tuple[dict, dict]:
    """label -> backend for every requested variant that can run here; label -> reason for the
    others."""
    backends, skipped = {}, {}
    for label in names:
        backend, precision, *extra = label.split()
        try:
            if label == "torch int8":
                backends[label] = torch_int8(model)
            elif label == "onnxruntime int8":
                if "onnxruntime fp32" not in backends:
                    raise BackendError(
                        "needs the onnxruntime fp32 export (list 'onnxruntime fp32' first)"
                    )
                backends[label] = onnxruntime_int8(model, export_dir, export_dir / "int8", threads)
            else:
                options = {"compile": True} if "compile" in extra else {}
                if backend == "onnxruntime":
                    options.update(export_dir=export_dir, padded_hw=padded_hw, num_threads=threads)
                backends[label] = create_backend(model, backend, precision, device, **options)
        except (BackendError, ImportError, RuntimeError) as err:
            skipped[label] = str(err).splitlines()[0]
            print(f"skip {label}: {skipped[label]}", file=sys.stderr)
    return backends, skipped


def accuracy(model, backends, body, images, resized_hw, padded_hw, people: int) -> dict:
    """Per variant vs CPU eager fp32: heads + vertices on the forced typical scene, SAT flips
    unforced."""
    cfg = model.cfg
    smap = netbench.scene_scale_map("typical", padded_hw, cfg.input_size)
    cpu_model = copy.deepcopy(model).cpu() if images.device.type != "cpu" else model
    netbench.force_eager(cpu_model, smap)
    with torch.inference_mode():
        reference = cpu_model(images.cpu(), resized_hw.cpu())
    netbench.force_eager(cpu_model, None)
    queries = netbench.top_queries(reference, people)
    frames = []
    for frame in netbench.test_frames():
        tensor, meta = preprocess(frame, cfg.input_size)
        hw = torch.tensor([meta.resized_hw])
        with torch.inference_mode():
            frames.append((tensor[None], hw, cpu_model(tensor[None], hw)))
    result = {}
    for label, backend in backends.items():
        netbench.force_scene(backend.network, smap)
        with torch.inference_mode():
            out = backend(images, resized_hw)
        entry = {
            "typical_heads_max_abs": netbench.head_diffs(out, reference),
            "typical_vertices": netbench.vertex_error_mm(body, out, reference, queries),
            "unforced_frames": [],
        }
        netbench.force_scene(backend.network, None)
        if backend.name == "onnxruntime":
            # Seeded weights give the unforced frames 4000-6000 tokens; onnxruntime's exported
            # attention materialises the N x N scores and its arena grew past 20 GB here (the run
            # was OOM-killed).
            entry["unforced_frames_skipped"] = (
                "onnxruntime: memory (N x N attention at 4000-6000 tokens)"
            )
            result[label] = entry
            continue
        for image, hw, ref in frames:
            with torch.inference_mode():
                out = backend(image.to(images.device), hw)
            check = netbench.sat_flips(out, ref)
            if check["hr_cell_flips"] == check["pooled_group_flips"] == 0:
                check["heads_max_abs"] = netbench.head_diffs(out, ref)
            entry["unforced_frames"].append(check)
        result[label] = entry
    return result


def host_stages(model, body, frame, people: int, iters: int) -> dict:
    """Preprocess (1280x720 -> network input) and postprocess incl. SMPL for ``people`` people,
    p50/p90."""
    pre, post = [], []
    tensor, meta = preprocess(frame, model.cfg.input_size)
    smap = netbench.scene_scale_map("typical", meta.padded_hw, model.cfg.input_size)
    netbench.force_eager(model, smap)
    with torch.inference_mode():
        raw = {
            k: v.cpu() if torch.is_tensor(v) else v
            for k, v in model(
                tensor[None].to(next(model.parameters()).device), torch.tensor([meta.resized_hw])
            ).items()
        }
    netbench.force_eager(model, None)
    thresh = float(raw["pred_confs"][0].sort(descending=True).values[people])
    for _ in range(iters):
        t = time.perf_counter()
        preprocess(frame, model.cfg.input_size)
        pre.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        humans = postprocess(raw, meta, thresh, body=body)[0]
        post.append((time.perf_counter() - t) * 1e3)
    assert len(humans) == people, len(humans)
    return {
        "preprocess": netbench.percentiles(pre),
        f"postprocess_{people}_people": netbench.percentiles(post),
    }


def make_body(workdir: Path):
    """The synthetic SMPL-format body (+ kid template): same size as SMPL, never a real body
    model."""
    from mahmr_ros.body import SMPLBody, make_synthetic_smpl

    kid = workdir / "kid.npy"
    return SMPLBody(make_synthetic_smpl(workdir / "smpl.npz", kid_template_path=kid), kid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="fov_kid", choices=sorted(CONFIGS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument(
        "--scenes", default="typical,1,5,15,30", help="typical and/or people counts"
    )
    parser.add_argument(
        "--variants", default=None, help="comma-separated, e.g. 'torch bf16,onnxruntime fp32'"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch/onnxruntime intra-op threads"
    )
    parser.add_argument(
        "--accuracy-people", type=int, default=5, help="queries compared as SMPL vertices"
    )
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument(
        "--tag", default="", help="appended to the result name (e.g. which variants)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = netbench.load_average()
    started = time.monotonic()
    torch.manual_seed(0)
    model = build_model(CONFIGS[args.config])
    cfg = model.cfg
    frame = np.random.default_rng(0).integers(0, 255, (*FRAME_HW, 3), dtype=np.uint8)
    image, meta = preprocess(frame, cfg.input_size)
    images, resized_hw = image[None].to(device), torch.tensor([meta.resized_hw])
    workdir = tempfile.TemporaryDirectory(prefix="bench_network_")
    body = make_body(Path(workdir.name))
    scenes = args.scenes.split(",")
    smaps = {s: netbench.scene_scale_map(s, meta.padded_hw, cfg.input_size) for s in scenes}

    # CPU eager fp32 references before any backend moves the model (a CUDA run checks CUDA against
    # the CPU).
    references = {}
    for scene, smap in smaps.items():
        netbench.force_eager(model, smap)
        with torch.inference_mode():
            references[scene] = model(images.cpu(), resized_hw)
    netbench.force_eager(model, None)
    names = (
        args.variants.split(",")
        if args.variants
        else (CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS)
    )
    names = [n.strip() for n in names]
    backends, skipped = build_variants(
        model, device, names, Path(workdir.name) / "onnx", meta.padded_hw, args.threads
    )
    if device.type == "cpu":
        skipped.setdefault(
            "torch fp16", "no fast fp16 kernels on the CPU (bf16 is the CPU's reduced precision)"
        )
        skipped.setdefault(
            "tensorrt fp16", "needs a CUDA device (and TensorRT, which cannot be installed here)"
        )

    rows = []
    eager_model = model.to(device)
    for scene, smap in smaps.items():
        netbench.force_eager(eager_model, smap)
        tokens = netbench.scene_tokens(smap)

        def eager_call():
            with torch.inference_mode():
                return eager_model(images, resized_hw)

        runs = {"eager fp32": (eager_call, None)}
        for label, backend in backends.items():
            netbench.force_scene(backend.network, smap)
            runs[label] = (
                lambda b=backend: b(images, resized_hw),
                lambda b=backend: dict(b.timings_ms),
            )
        load = netbench.load_average()
        results = measure_scene(runs, device, args)
        for label, (fn, _) in runs.items():
            with torch.inference_mode():
                results[label]["max_abs_diff_vs_cpu_fp32"] = netbench.max_abs_diff(
                    fn(), references[scene]
                )
        netbench.force_eager(eager_model, None)
        base = results["eager fp32"]["p50_ms"]
        for label, result in results.items():
            backend_name, precision = label.split(" ", 1)
            if label != "eager fp32":
                result["speedup_vs_eager_fp32"] = base / result["p50_ms"]
            rows.append(
                {
                    "scene": scene,
                    "tokens": tokens,
                    "backend": backend_name,
                    "precision": precision,
                    "load_before": load,
                    **result,
                }
            )
            print(
                f"{scene:>7s} ({tokens} tokens) {label:18s} {result['p50_ms']:9.1f} ms  "
                f"x{base / result['p50_ms']:.2f}  load {load}",
                flush=True,
            )

    report = {
        "machine": netbench.machine_info(device),
        "config": args.config,
        "model": {
            "input_size": cfg.input_size,
            "encoder": cfg.encoder,
            "embed_dim": cfg.embed_dim,
        },
        "weights": "seeded (torch.manual_seed(0)), not trained",
        "frame": f"{FRAME_HW[1]}x{FRAME_HW[0]}",
        "padded_hw": list(meta.padded_hw),
        "warmup": args.warmup,
        "iters": args.iters,
        "load_average_before": load_before,
        "skipped": skipped,
        "rows": rows,
    }
    report["device"] = netbench.device_label(report["machine"])
    if device.type == "cpu":
        report["host_stages"] = host_stages(
            eager_model, body, frame, args.accuracy_people, args.iters
        )
    if not args.no_accuracy:
        report["accuracy"] = accuracy(
            eager_model, backends, body, images, resized_hw, meta.padded_hw, args.accuracy_people
        )
    report["load_average_after"] = netbench.load_average()
    report["wall_s"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(report) + (f"-{netbench.slug(args.tag)}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {out / stem}.{{json,md}}")
    return 0


def measure_scene(runs, device, args) -> dict:
    return netbench.measure(runs, device, args.warmup, args.iters)


def result_stem(report: dict) -> str:
    """``bench-network-<config>-<device>-<threads>t-torch<ver>-ort<ver>``."""
    m = report["machine"]
    device = m["gpu"] if m["device_type"] == "cuda" else m["cpu"]
    return netbench.slug(
        f"bench-network-{report['config']}-{device}-{m['torch_threads']}t-torch{m['torch']}-ort{m['onnxruntime']}"
    )


def markdown(report: dict) -> str:
    """Speed table (total and per-stage p50 / p90, speed-up vs eager fp32) and accuracy table."""
    model, (Hp, Wp) = report["model"], report["padded_hw"]
    stages = netbench.stage_columns(report["rows"])
    lines = [
        f"Device: {report['device']}; torch {report['machine']['torch']}, onnxruntime "
        f"{report['machine']['onnxruntime']}; config `{report['config']}` (input "
        f"{model['input_size']} px, {model['encoder']}), "
        f"{report.get('weights', 'seeded weights')}; frame {report['frame']} -> {Wp}x{Hp}; "
        f"{report['iters']} iterations after {report['warmup']} warm-up, round-robin. Load "
        f"average before {report.get('load_average_before')}, after "
        f"{report.get('load_average_after')}. Times in ms, p50 / p90.",
        "",
        "| scene | tokens | backend | precision | total | speed-up vs eager fp32 | fps | "
        "max abs diff vs CPU fp32 | " + " | ".join(stages) + " |",
        "|---|---:|---|---|---:|---:|---:|---:|" + "---:|" * len(stages),
    ]
    for row in report["rows"]:
        row_stages = row.get("stages", {})
        cells = [
            f"{row_stages[k]['p50_ms']:.1f} / {row_stages[k]['p90_ms']:.1f}"
            if k in row_stages
            else "–"
            for k in stages
        ]
        speedup = (
            f"{row['speedup_vs_eager_fp32']:.2f}x"
            if "speedup_vs_eager_fp32" in row
            else "1.00x (baseline)"
        )
        diff = (
            f"{row['max_abs_diff_vs_cpu_fp32']:.1e}" if "max_abs_diff_vs_cpu_fp32" in row else "–"
        )
        lines.append(
            f"| {row.get('scene', row.get('people'))} | {row['tokens']} | {row['backend']} | "
            f"{row['precision']} | "
            f"{row['p50_ms']:.1f} / {row['p90_ms']:.1f} | {speedup} | {row['fps']:.2f} | {diff} | "
            + " | ".join(cells)
            + " |"
        )
    if report.get("host_stages"):
        lines += [
            "",
            "Host stages (CPU): "
            + ", ".join(
                f"{k} {v['p50_ms']:.1f} / {v['p90_ms']:.1f} ms"
                for k, v in report["host_stages"].items()
            ),
        ]
    if report.get("accuracy"):
        lines += [
            "",
            "Accuracy vs CPU eager fp32 (typical scene, same tokens: max |diff| per head; SMPL "
            "vertices of the most confident queries; SAT decisions on unforced frames):",
            "",
            "| variant | confs | boxes | rotmats | betas | transl (m) | vertices max / median mm "
            "| SAT flips (hr cells, pooled groups; reference cells within 0.01 of a threshold) "
            "per frame |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for label, acc in report["accuracy"].items():
            h = acc["typical_heads_max_abs"]
            v = acc["typical_vertices"]
            flips = acc.get("unforced_frames_skipped") or "; ".join(
                f"{f['hr_cell_flips']}, {f['pooled_group_flips']}"
                + (f" ({f['cells_near_threshold']}/{f['cells']} near)" if "cells" in f else "")
                for f in acc["unforced_frames"]
            )

            lines.append(
                f"| {label} | {h['pred_confs']:.1e} | {h['pred_boxes']:.1e} | "
                f"{h['pred_rotmats']:.1e} | {h['pred_betas']:.1e} | {h['pred_transl']:.1e} | "
                f"{v['max_mm']:.2f} / {v['median_mm']:.2f} | {flips} |"
            )
    if report["skipped"]:
        lines += ["", "Not run here:"] + [f"- {k}: {v}" for k, v in report["skipped"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
