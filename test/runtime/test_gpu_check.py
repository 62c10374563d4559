"""The prepared GPU check (``benchmarks/gpu_check.py``) in its CPU mode, so it never rots: every
section runs on the tiny network, CUDA-only variants are skipped with their reason, and the time
budget is honoured."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(BENCH))  # gpu_check imports its sibling netbench
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cpu_report(gpu_check, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    args = [
        "--device",
        "cpu",
        "--config",
        "tiny",
        "--out",
        str(out),
        "--scenes",
        "1,5",
        "--iters",
        "2",
    ]
    assert gpu_check.main(args + ["--warmup", "1", "--threads", "1"]) == 0
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_cpu_mode_parity_fp32_is_exact_and_reduced_precision_is_reported(cpu_report):
    report, _ = cpu_report
    variants = report["sections"]["parity"]["variants"]
    for label in ("eager fp32", "torch fp32"):  # CPU vs CPU: the staged network equals eager
        summary = variants[label]["summary"]
        assert summary["pass"] and summary["sat_flips"] == 0
        assert summary["worst_heads"] < 1e-5 and summary["worst_vertices_mm"] < 1e-3
    assert "fp16 needs a CUDA device" in variants["torch fp16"]["skipped"]
    bf16 = variants["torch bf16"]
    assert bf16["reference"] == "device eager fp32"
    assert 0 < bf16["summary"]["worst_heads"] < 0.1  # bf16 really ran, and stayed close
    assert [len(v["frames"]) for v in (bf16, variants["torch fp32"])] == [3, 3]
    tokens = {s: c["tokens"] for s, c in variants["torch fp32"]["scenes"].items()}
    assert len(set(tokens.values())) == 3, tokens  # the parity scenes differ in token count


def test_cpu_mode_times_every_stage_and_the_pipeline(cpu_report):
    report, markdown = cpu_report
    rows = report["sections"]["speed"]["rows"]
    timed = {(r["scene"], r["variant"]) for r in rows if "p50_ms" in r}
    assert {("1", "eager fp32"), ("5", "torch fp32"), ("5", "torch bf16")} <= timed
    staged = next(r for r in rows if r.get("variant") == "torch fp32")
    assert set(staged["stages"]) >= {"scale_map", "select", "lvl0", "encoder", "decoder"}
    host = [r for r in rows if r.get("variant") == "host"]
    assert [h["people_decoded"] for h in host] == [1, 5]  # forced people reach SMPL and DTO
    assert host[0]["dto_lite_cpu"]["p50_ms"] > 0
    e2e = report["sections"]["end_to_end"]
    assert e2e["p50_ms"] > 0 and e2e["people_returned_mean"] == 8  # tiny has 8 queries < 10 forced
    assert "dto" in e2e["stages"]
    assert "cuda_graphs needs a CUDA device" in json.dumps(report["sections"]["cuda_graphs"])
    assert "CUDA only" in report["sections"]["compile"]["skipped"]
    assert "## Parity" in markdown and "## End to end" in markdown and "## Skipped" in markdown
    assert report["load_average_before"] and "running" not in report


def test_a_spent_budget_skips_sections_and_says_so(gpu_check, tmp_path):
    assert (
        gpu_check.main(
            ["--device", "cpu", "--config", "tiny", "--out", str(tmp_path), "--budget-s", "0"]
        )
        == 0
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["sections"] == {}
    assert set(report["skipped"]) == {"parity", "speed", "end_to_end", "cuda_graphs", "compile"}
    assert all(why.startswith("budget:") for why in report["skipped"].values())
