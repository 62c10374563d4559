"""Backend selection (``auto``) and ``create_backend`` argument handling; pure logic, no
accelerator."""

from __future__ import annotations

import logging

import pytest
import torch

from mahmr_ros.runtime import (
    BackendError,
    Platform,
    create_backend,
    detect_platform,
    select_backend,
)
from mahmr_ros.runtime.backend import resolve_device


@pytest.mark.parametrize(
    "platform,precision,expected",
    [
        (Platform("cuda", "NVIDIA H100", tensorrt=True, onnxruntime=True), "fp16", "tensorrt"),
        (Platform("cuda", "NVIDIA H100", tensorrt=True), "fp32", "tensorrt"),
        (Platform("cuda", "NVIDIA H100", tensorrt=False, onnxruntime=True), "fp16", "torch"),
        (Platform("cpu", onnxruntime=True, cpu_bf16=True), "fp32", "torch"),
        (Platform("cpu", onnxruntime=False), "fp32", "torch"),
        (Platform("cpu", onnxruntime=True, cpu_bf16=True), "bf16", "torch"),
        (Platform("cpu", onnxruntime=True, cpu_bf16=False), "bf16", "torch"),
    ],
)
def test_auto_picks_the_fastest_available_backend(platform, precision, expected):
    name, reason = select_backend(precision, platform)
    assert name == expected
    assert reason  # the reason is logged; it must say something


def test_auto_reasons_name_what_was_missing():
    _, reason = select_backend("fp16", Platform("cuda", "NVIDIA H200", tensorrt=False))
    assert "TensorRT is not importable" in reason and "NVIDIA H200" in reason
    _, reason = select_backend("bf16", Platform("cpu", cpu_bf16=False))
    assert "no native bf16" in reason
    _, reason = select_backend("fp32", Platform("cpu", cpu_bf16=True, onnxruntime=True))
    assert "model.precision bf16" in reason  # a CPU with native bf16 is pointed at the fast path
    _, reason = select_backend("fp32", Platform("cpu", cpu_bf16=False, onnxruntime=True))
    assert "bf16" not in reason


def test_auto_rejects_fp16_on_cpu_and_unknown_precision():
    with pytest.raises(BackendError, match="fp16 on the CPU"):
        select_backend("fp16", Platform("cpu"))
    with pytest.raises(BackendError, match="unknown precision 'int8'"):
        select_backend("int8", Platform("cpu"))


def test_detect_platform_on_this_machine():
    platform = detect_platform("cpu")
    assert platform.device == "cpu" and platform.gpu_name is None
    assert platform.onnxruntime  # a core requirement


def test_create_backend_auto_logs_its_choice(sat_model, sat_images, caplog):
    with caplog.at_level(logging.INFO, logger="mahmr_ros.runtime.backend"):
        backend = create_backend(sat_model, backend="auto", precision="bf16", device="cpu")
    assert backend.name == "torch" and backend.precision == "bf16"
    assert "backend auto -> torch" in caplog.text


def test_create_backend_rejects_unknown_names(sat_model):
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'"):
        create_backend(sat_model, backend="tensorflow")
    with pytest.raises(BackendError, match="unknown precision 'fp8'"):
        create_backend(sat_model, backend="torch", precision="fp8")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the error raised on a machine without CUDA"
)
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(BackendError, match="no CUDA device"):
        resolve_device("cuda")


def test_backend_aliases_resolve(sat_model):
    with pytest.raises(BackendError, match="TensorRT is not importable|needs a CUDA device"):
        create_backend(sat_model, backend="trt", precision="fp16", device="cpu")
    with pytest.raises(BackendError, match="onnxruntime"):
        create_backend(sat_model, backend="onnx", precision="bf16", device="cpu")
