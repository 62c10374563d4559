"""``python -m mahmr_ros.cli build-engine --onnx DIR``: prebuild TensorRT engines into the engine
cache.

Engines are keyed by GPU name + TensorRT version + ONNX hash (+ precision and profile), so running
this on the target once makes the node start without building. TensorRT must be installed on that
machine (it cannot be installed in this project's CI or GPU test machines); ``--check-only``
verifies the ONNX stages and prints the optimization profiles without TensorRT. Exit status 0 =
done, 1 = verification failed, 2 = cannot run.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mahmr_ros.commands.export_onnx import padded_size, parse_size

HELP = "prebuild TensorRT engines from the ONNX stages"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--onnx", required=True, help="export directory (python -m mahmr_ros.cli export-onnx)"
    )
    parser.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "bf16"))
    parser.add_argument(
        "--cache-dir", default=None, help="engine cache (default ~/.cache/mahmr_ros/engines)"
    )
    parser.add_argument(
        "--image-size", type=parse_size, default=None, help="camera WxH (default: the export's)"
    )
    parser.add_argument(
        "--token-bucket", type=int, default=64, help="token-axis padding multiple (64)"
    )
    parser.add_argument(
        "--patch-bucket", type=int, default=16, help="hr-cell padding multiple (16)"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when a cached engine matches"
    )
    parser.add_argument(
        "--check-only", action="store_true", help="verify ONNX + print profiles, no TensorRT"
    )


def run(args: argparse.Namespace) -> int:
    from mahmr_ros.runtime.backend import BackendError
    from mahmr_ros.runtime.export import load_manifest, verify_export
    from mahmr_ros.runtime.tensorrt_backend import build_engines, stage_profiles

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = load_manifest(args.onnx)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    padded_hw = None
    if args.image_size is not None:
        padded_hw = padded_size(args.image_size, manifest["config"]["input_size"])
    problems = {k: v for k, v in verify_export(args.onnx).items() if v}
    if problems:
        print(f"[build-engine] ONNX stages fail verification: {problems}", file=sys.stderr)
        return 1
    profiles = stage_profiles(manifest, padded_hw, args.token_bucket, args.patch_bucket)
    for stage, inputs in profiles.items():
        for name, (lo, opt, hi) in inputs.items():
            print(f"{stage:10s} {name:13s} min {lo}  opt {opt}  max {hi}")
    if args.check_only:
        return 0
    try:
        engines = build_engines(
            args.onnx,
            args.precision,
            args.cache_dir,
            padded_hw,
            args.token_bucket,
            args.patch_bucket,
            args.force,
        )
    except BackendError as err:
        print(err, file=sys.stderr)
        return 2
    for stage, data in engines.items():
        print(f"{stage:10s} engine {len(data) / 2**20:.1f} MiB")
    return 0
