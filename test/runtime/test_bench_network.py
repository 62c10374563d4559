"""The network benchmark's synthetic people and report table (``benchmarks/bench_network.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from mahmr_ros.model import sat

# benchmarks/ is a script folder, not a package: load the file itself.
_SPEC = importlib.util.spec_from_file_location(
    "bench_network", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_network.py"
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)
ForcedScaleMap, markdown, synthetic_scale_map = (
    bench.ForcedScaleMap,
    bench.markdown,
    bench.synthetic_scale_map,
)


def test_more_people_cover_more_cells_and_small_people_get_high_res_tokens():
    padded, scale = (392, 672), 672 / 1280
    maps = {p: synthetic_scale_map(p, padded, scale, seed=p) for p in (0, 1, 5, 15)}
    assert maps[0][..., 0].sum() == 0
    covered = [int((maps[p][..., 0] > 0.3).sum()) for p in (1, 5, 15)]
    assert covered[0] < covered[1] < covered[2]
    tokens = [int(sat.select_cells(maps[p]).num_tokens()[0]) for p in (0, 1, 5, 15)]
    assert tokens[0] == (392 // 56) * (672 // 56)  # all background: one lvl2 token per 2x2 group
    assert tokens[3] > tokens[0]
    assert sat.select_cells(maps[15]).hr_cells.any()  # some of 15 people are small


def test_forced_scale_map_replaces_only_the_scale_map():
    class Runner:
        device = torch.device("cpu")
        requires_masks = False
        decoder_outputs = ("pred_confs",)

        def run(self, stage, *inputs):
            return (torch.zeros(1), torch.ones(1), torch.full((1, 2, 2, 2), 0.5))

        def synchronize(self):
            pass

    forced = ForcedScaleMap(Runner(), torch.zeros(1, 2, 2, 2))
    cls1, lvl1, smap = forced.run("scale_map", torch.zeros(1))
    assert smap.abs().sum() == 0 and lvl1.item() == 1
    assert forced.run("encoder")[2].mean() == 0.5


def test_markdown_lists_baseline_speedups_and_skipped_backends():
    row = {"people": 5, "tokens": 100, "precision": "fp32", "p50_ms": 10.0, "p90_ms": 12.0, "fps": 95.0}
    report = {
        "device": "cpu",
        "torch": "2.13",
        "onnxruntime": "1.32",
        "config": "small",
        "model": {"input_size": 672, "encoder": "vits"},
        "frame": "1280x720",
        "padded_hw": [392, 672],
        "iters": 3,
        "warmup": 1,
        "skipped": {"tensorrt fp16": "TensorRT is not importable"},
        "rows": [
            {**row, "backend": "eager"},
            {**row, "backend": "onnxruntime", "speedup_vs_eager_fp32": 2.5},
        ],
    }
    text = markdown(report)
    assert "1.00x (baseline)" in text and "2.50x" in text and "TensorRT is not importable" in text
