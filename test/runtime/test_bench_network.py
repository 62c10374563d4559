"""The network benchmarks' synthetic scenes, forcing wrappers, accuracy helpers and report table
(``benchmarks/netbench.py``, ``benchmarks/bench_network.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from mahmr_ros.model import sat

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # benchmarks/ is a script folder, not a package
_SPEC = importlib.util.spec_from_file_location("bench_network", BENCH / "bench_network.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)
netbench = sys.modules["netbench"]


class Runner:
    device = torch.device("cpu")
    requires_masks = False
    decoder_outputs = ("pred_confs", "pred_boxes")

    def run(self, stage, *inputs):
        if stage == "decoder":
            return (torch.full((1, 6), 0.5), torch.zeros(1, 6, 4))
        return (torch.zeros(1), torch.ones(1), torch.full((1, 2, 2, 2), 0.5))

    def synchronize(self):
        pass


def test_typical_scene_has_the_spec_token_mix():
    # mahmr_model §9: typical 16:9 at 1288x728 = (1008 lvl0, 304 lvl1, 160 lvl2) = 1472 tokens.
    masks = sat.select_cells(
        netbench.scene_scale_map("typical", (728, 1288), 1288), official_quirk=True
    )
    assert 4 * int(masks.hr_cells.sum()) == 1008
    assert int(masks.keep_lvl1.sum()) == 304
    assert int(masks.pooled_groups.sum()) == 160
    assert netbench.scene_tokens(netbench.scene_scale_map("typical", (728, 1288), 1288)) == 1472


def test_more_people_cover_more_cells_and_small_people_get_high_res_tokens():
    padded, scale = (392, 672), 672 / 1280
    maps = {p: bench.synthetic_scale_map(p, padded, scale, seed=p) for p in (0, 1, 5, 15)}
    assert maps[0][..., 0].sum() == 0
    covered = [int((maps[p][..., 0] > 0.3).sum()) for p in (1, 5, 15)]
    assert covered[0] < covered[1] < covered[2]
    tokens = [int(sat.select_cells(maps[p]).num_tokens()[0]) for p in (0, 1, 5, 15)]
    assert tokens[0] == (392 // 56) * (672 // 56)  # all background: one lvl2 token per 2x2 group
    assert tokens[3] > tokens[0]
    assert sat.select_cells(maps[15]).hr_cells.any()  # some of 15 people are small


def test_forced_scale_map_replaces_only_the_scale_map_and_people_only_the_confidences():
    forced = bench.ForcedScaleMap(Runner(), torch.zeros(1, 2, 2, 2))
    cls1, lvl1, smap = forced.run("scale_map", torch.zeros(1))
    assert smap.abs().sum() == 0 and lvl1.item() == 1
    assert forced.run("encoder")[2].mean() == 0.5
    confs, boxes = netbench.ForcedPeople(Runner(), torch.zeros(1, 2, 2, 2), people=2).run(
        "decoder"
    )
    torch.testing.assert_close(confs, torch.tensor([[0.9, 0.9, 0.05, 0.05, 0.05, 0.05]]))
    assert boxes.abs().sum() == 0


def test_force_scene_wraps_once_and_unwraps():
    class Network:
        runner = Runner()

    network, base = Network(), Network.runner
    netbench.force_scene(network, torch.zeros(1, 2, 2, 2))
    netbench.force_scene(network, torch.ones(1, 2, 2, 2))  # re-forcing replaces, never nests
    assert network.runner.runner is base and network.runner.scale_map.mean() == 1
    netbench.force_scene(network, None)
    assert network.runner is base


def test_sat_flips_count_differing_decisions():
    def out(hr, pooled):
        return {"sat": {"hr_cells": hr, "pooled_groups": pooled, "num_tokens": torch.tensor([7])}}

    hr = torch.zeros(1, 4, 4, dtype=torch.bool)
    pooled = torch.zeros(1, 2, 2, dtype=torch.bool)
    hr2, pooled2 = hr.clone(), pooled.clone()
    hr2[0, 1, 2] = hr2[0, 3, 3] = True
    pooled2[0, 0, 0] = True
    flips = netbench.sat_flips(out(hr2, pooled2), out(hr, pooled))
    assert (flips["hr_cell_flips"], flips["pooled_group_flips"]) == (2, 1)


def test_result_names_carry_device_threads_and_versions():
    assert netbench.slug("Intel(R) Xeon(R) Processor") == "intel-xeon-processor"
    report = {
        "config": "fov_kid",
        "machine": {"device_type": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "torch_threads": 2,
                    "torch": "2.13.0+cpu", "onnxruntime": "1.32.0"},
    }  # fmt: skip
    assert (
        bench.result_stem(report)
        == "bench-network-fov_kid-intel-xeon-processor-2t-torch2.13.0-cpu-ort1.32.0"
    )


def test_markdown_lists_baseline_speedups_accuracy_and_skipped_backends():
    row = {
        "scene": "5",
        "tokens": 100,
        "precision": "fp32",
        "p50_ms": 10.0,
        "p90_ms": 12.0,
        "fps": 95.0,
    }
    heads = dict.fromkeys(
        ("pred_confs", "pred_boxes", "pred_rotmats", "pred_betas", "pred_transl"), 1e-3
    )
    report = {
        "device": "cpu",
        "machine": {"torch": "2.13", "onnxruntime": "1.32"},
        "config": "small",
        "model": {"input_size": 672, "encoder": "vits"},
        "frame": "1280x720",
        "padded_hw": [392, 672],
        "iters": 3,
        "warmup": 1,
        "load_average_before": [1.0, 1.0, 1.0],
        "skipped": {"tensorrt fp16": "TensorRT is not importable"},
        "rows": [
            {**row, "backend": "eager"},
            {**row, "backend": "torch", "precision": "bf16", "speedup_vs_eager_fp32": 2.5},
        ],
        "accuracy": {
            "torch bf16": {
                "typical_heads_max_abs": heads,
                "typical_vertices": {"max_mm": 3.25, "median_mm": 1.0},
                "unforced_frames": [{"hr_cell_flips": 2, "pooled_group_flips": 0}],
            }
        },
    }
    text = bench.markdown(report)
    assert "1.00x (baseline)" in text and "2.50x" in text and "TensorRT is not importable" in text
    assert "3.25 / 1.00" in text and "| 2, 0 |" in text and "[1.0, 1.0, 1.0]" in text
