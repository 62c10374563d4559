"""``export-onnx`` and ``build-engine`` commands: argument handling, check-only profiles,
no-TensorRT exit."""

from __future__ import annotations

import argparse

import pytest

from mahmr_ros.cli import main
from mahmr_ros.commands.export_onnx import padded_size, parse_size
from mahmr_ros.runtime.tensorrt_backend import tensorrt_available


def test_parse_size_is_width_by_height():
    assert parse_size("1280x720") == (720, 1280)
    for bad in ("1280", "axb", "0x720"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_padded_size_of_a_720p_camera():
    assert padded_size((720, 1280), 1288) == (728, 1288)
    assert padded_size((1280, 720), 1288) == (1288, 728)


def test_export_without_weights_is_refused(tmp_path, capsys):
    assert main(["export-onnx", "--out", str(tmp_path)]) == 2
    assert "--weights is required" in capsys.readouterr().err


def test_export_with_a_missing_checkpoint_names_it(tmp_path, capsys):
    missing = tmp_path / "mahmr_stage3.bin"
    assert main(["export-onnx", "--weights", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "mahmr_stage3.bin" in capsys.readouterr().err


def test_build_engine_check_only_prints_profiles(export_dir, capsys):
    assert (
        main(["build-engine", "--onnx", str(export_dir), "--check-only", "--token-bucket", "16"])
        == 0
    )
    out = capsys.readouterr().out
    assert "encoder    tokens" in out and "max (1, 241, 64)" in out


def test_build_engine_on_a_missing_export_names_the_command(tmp_path, capsys):
    assert main(["build-engine", "--onnx", str(tmp_path)]) == 2
    assert "export-onnx" in capsys.readouterr().err


@pytest.mark.skipif(tensorrt_available(), reason="checks the exit where TensorRT is absent")
def test_build_engine_without_tensorrt_exits_2_with_the_reason(export_dir, capsys):
    assert main(["build-engine", "--onnx", str(export_dir)]) == 2
    assert "TensorRT is not importable" in capsys.readouterr().err
