"""Body models: the kid-aware SMPL layer (``SMPLBody``), SMPL file reading / conversion, and a
SYNTHETIC SMPL-format body for tests (``make_synthetic_smpl``; never a real body model)."""

import warnings

from mahmr_ros.body.smpl import JOINT_NAMES, SMPLBody
from mahmr_ros.body.smpl_file import (
    SMPLFileError,
    convert_smpl,
    load_kid_template,
    load_smpl_arrays,
)
from mahmr_ros.body.synthetic import make_synthetic_smpl, synthetic_smpl_arrays

__all__ = [
    "JOINT_NAMES",
    "SMPLBody",
    "SMPLFileError",
    "convert_smpl",
    "load_kid_template",
    "load_smpl_arrays",
    "make_synthetic_smpl",
    "synthetic_smpl_arrays",
]


def __getattr__(name: str):
    if name == "resolve_device":  # moved in 0.3: one resolver for the whole package
        warnings.warn(
            "mahmr_ros.body.resolve_device is deprecated; use mahmr_ros.device.resolve_device",
            DeprecationWarning,
            stacklevel=2,
        )
        from mahmr_ros.device import resolve_device

        return resolve_device
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
