"""``python -m mahmr_ros.cli export-onnx --weights W --out DIR``: export the network's four stages
to ONNX.

Writes ``scale_map.onnx``, ``lvl0.onnx``, ``encoder.onnx``, ``decoder.onnx`` and ``manifest.json``
(see ``mahmr_ros/runtime/export.py``), then verifies every graph (onnx.checker, TensorRT parser
rules, bounded dynamic axes) and, with ``--check-parity``, compares onnxruntime against eager torch
on a synthetic frame. Exit status 0 = all verified, 1 = a check failed, 2 = bad arguments or files.
"""

from __future__ import annotations

import argparse
import logging
import sys

HELP = "export the network's stages to ONNX"


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (W x H, pixels) -> (H, W)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT in pixels, e.g. 1280x720, got '{text}'"
        ) from err
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got '{text}'")
    return h, w


def padded_size(image_hw: tuple[int, int], input_size: int) -> tuple[int, int]:
    """Network input (Hp, Wp) of a camera image: official resize to the long side, padded to 56."""
    from mahmr_ros.model.preprocess import PAD_MULTIPLE, resized_size

    h, w = resized_size(image_hw, input_size)
    return -(-h // PAD_MULTIPLE) * PAD_MULTIPLE, -(-w // PAD_MULTIPLE) * PAD_MULTIPLE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        default="",
        help="MA-HMR checkpoint (mahmr_stage3.bin); required unless --random",
    )
    parser.add_argument(
        "--config", default="fov_kid", help="model config: fov_kid, fov or default"
    )
    parser.add_argument(
        "--random",
        action="store_true",
        help="export randomly initialised weights (toolchain tests only)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="use the tiny test config (with --random)"
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--image-size",
        type=parse_size,
        default=(720, 1280),
        help="camera image WxH (default 1280x720)",
    )
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17, default 18)")
    parser.add_argument(
        "--check-parity",
        action="store_true",
        help="also compare onnxruntime with eager torch on a frame",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from mahmr_ros.model import TINY_OVERRIDES, build_model, load_checkpoint
    from mahmr_ros.runtime.export import export_stages, verify_export

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.weights and not args.random:
        print(
            "[export-onnx] --weights is required (or --random for a toolchain test)",
            file=sys.stderr,
        )
        return 2
    config = {"preset": args.config, **TINY_OVERRIDES} if args.tiny else args.config
    model = build_model(config)
    if args.weights:
        try:
            load_checkpoint(model, args.weights)
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            print(f"[export-onnx] {err}", file=sys.stderr)
            return 2
    padded_hw = padded_size(args.image_size, model.cfg.input_size)
    manifest = export_stages(model, args.out, padded_hw=padded_hw, opset=args.opset)
    problems = verify_export(args.out)
    status = 0
    for name, found in problems.items():
        entry = manifest["stages"][name]
        print(
            f"{name:10s} {entry['file']:16s} sha256 {entry['sha256'][:12]}  "
            f"{'OK' if not found else 'FAIL'}"
        )
        for problem in found:
            print(f"    {problem}")
            status = 1
    if args.check_parity:
        from mahmr_ros.runtime.onnx_backend import OnnxBackend

        gen = torch.Generator().manual_seed(0)
        images = torch.randn(1, 3, *padded_hw, generator=gen)
        hw = torch.tensor([[padded_hw[0], padded_hw[1]]])
        with torch.no_grad():
            eager = model(images, hw)
        out = OnnxBackend(model, export_dir=args.out)(images, hw)
        worst = max(float((out[k] - eager[k]).abs().max()) for k in out if k != "sat")
        ok = worst < 1e-3
        print(
            f"onnxruntime vs eager: max |diff| {worst:.2e} ({'OK' if ok else 'FAIL'}, tolerance "
            "1e-3)"
        )
        status = status or (0 if ok else 1)
    return status
