"""Body models: the kid-aware SMPL layer (``SMPLBody``), SMPL file reading / conversion, and a SYNTHETIC
SMPL-format body for tests (``make_synthetic_smpl``; never a real body model)."""

from mahmr_ros.body.smpl import JOINT_NAMES, SMPLBody
from mahmr_ros.body.smpl_file import SMPLFileError, convert_smpl, load_kid_template, load_smpl_arrays
from mahmr_ros.body.synthetic import make_synthetic_smpl, synthetic_smpl_arrays
from mahmr_ros.device import resolve_device  # deprecated here: import it from mahmr_ros.device

__all__ = [
    "JOINT_NAMES",
    "SMPLBody",
    "SMPLFileError",
    "convert_smpl",
    "load_kid_template",
    "load_smpl_arrays",
    "make_synthetic_smpl",
    "resolve_device",
    "synthetic_smpl_arrays",
]
