"""``python -m mahmr_ros.cli convert-smpl SMPL_NEUTRAL.pkl [-o smpl_neutral.npz]``.

Turns the official SMPL ``.pkl`` (a Python 2 pickle with chumpy arrays and a sparse joint
regressor) into a plain ``.npz`` of numpy arrays that loads without pickle or chumpy
(``mahmr_ros.body.smpl_file``). Run it once on your own licensed download; the result stays under
the SMPL licence, do not redistribute it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "convert an official SMPL .pkl (chumpy) into a plain .npz smplx can load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="SMPL model file, e.g. SMPL_NEUTRAL.pkl / basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
    )
    parser.add_argument(
        "-o", "--output", default="", help="output .npz (default: next to the input, same stem)"
    )


def run(args: argparse.Namespace) -> int:
    from mahmr_ros.body import SMPLFileError, convert_smpl, load_smpl_arrays

    src = Path(args.model)
    dst = Path(args.output) if args.output else src.with_suffix(".npz")
    if dst.resolve() == src.resolve():
        print(f"convert-smpl: output {dst} would overwrite the input; pass -o", file=sys.stderr)
        return 2
    try:
        written = convert_smpl(src, dst)
        arrays = load_smpl_arrays(written)  # read back: the .npz must load on its own
    except SMPLFileError as err:
        print(f"convert-smpl: {err}", file=sys.stderr)
        return 1
    V, S = arrays["v_template"].shape[0], arrays["shapedirs"].shape[-1]
    print(
        f"convert-smpl: wrote {written} ({V} vertices, {S} shape components, {len(arrays['f'])} "
        "faces)"
    )
    return 0
