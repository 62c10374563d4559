"""Reading SMPL model files without chumpy, validating them, and converting the official ``.pkl``
to ``.npz``.

The official ``SMPL_NEUTRAL.pkl`` / ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl`` is a Python 2
pickle whose ``shapedirs`` (and, in some releases, other arrays) are ``chumpy.ch.Ch`` objects and
whose ``J_regressor`` is a ``scipy.sparse`` matrix. chumpy is unmaintained and does not build on
current Python / numpy, so instead of importing it we unpickle with a *restricted* unpickler:

* numpy array / dtype reconstruction and ``scipy.sparse`` matrices are allowed (plain data);
* every ``chumpy.*`` class becomes :class:`_ChumpyStub`, which only records the pickled
  ``__dict__``. A plain ``Ch`` keeps its value in ``x`` (chumpy's only "dterm" of the base class),
  which we turn into an ndarray; derived chumpy expressions (sums, reshapes ...) have no stored
  value and are reported by name;
* anything else (os.system, arbitrary classes) is refused, so a malicious file cannot run code.

``load_smpl_arrays`` returns plain numpy arrays for either file type; ``convert_smpl`` writes them
as an ``.npz`` that ``np.load`` (and ``smplx`` through ``smplx.utils.Struct``) reads with no pickle
at all.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

#: Arrays every SMPL-format model must have (names of the official file), with their expected
#: shapes (V = vertices, S = shape components >= 10; None = any size).
REQUIRED_KEYS: dict[str, tuple] = {
    "v_template": ("V", 3),
    "f": (None, 3),
    "J_regressor": (24, "V"),
    "weights": ("V", 24),
    "kintree_table": (2, 24),
    "shapedirs": ("V", 3, "S"),
    "posedirs": ("V", 3, 207),
}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    (
        "_codecs",
        "encode",
    ),  # how protocol-2 pickles written by Python 3 store bytes (str -> latin-1 bytes)
}
_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix"}


class SMPLFileError(ValueError):
    """A missing, unreadable or malformed SMPL-format model file; the message names the file and
    problem."""


class _ChumpyStub:
    """Stand-in for any chumpy class: keeps the pickled state, never runs chumpy code."""

    chumpy_class = "chumpy.ch.Ch"

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}

    def to_array(self, key: str, source: str) -> np.ndarray:
        value = self.state.get("x")
        if isinstance(value, _ChumpyStub):
            return value.to_array(key, source)
        if value is None:
            raise SMPLFileError(
                f"[body.smpl_file] {source}: '{key}' is a derived chumpy expression "
                f"({self.chumpy_class}) with no stored value; convert the file once with chumpy "
                "installed (np.array(model[key]) for each key)"
            )
        return np.asarray(value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows numpy / scipy.sparse data and maps chumpy classes to
    ``_ChumpyStub``."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str):
        # Python 2 names (copy_reg, __builtin__) as the default find_class would map them with
        # fix_imports.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module.split(".")[0] == "chumpy":
            return type(name, (_ChumpyStub,), {"chumpy_class": f"{module}.{name}"})
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return getattr(importlib.import_module("scipy.sparse"), name)
        if (module, name) in _ALLOWED_GLOBALS:
            if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
                module = "numpy._core" + module[len("numpy.core") :]
            return getattr(importlib.import_module(module), name)
        raise SMPLFileError(
            f"[body.smpl_file] {self.source}: refusing to unpickle '{module}.{name}' (only numpy, "
            "scipy.sparse and chumpy data are allowed in an SMPL model file)"
        )


def _plain(value, key: str, source: str):
    """chumpy stub / sparse matrix / array-like -> numpy (sparse J_regressor becomes dense)."""
    if isinstance(value, _ChumpyStub):
        return value.to_array(key, source)
    if hasattr(value, "toarray"):
        return np.asarray(value.toarray())
    return value


def read_model_file(path: str | Path) -> dict:
    """Raw contents of an SMPL-format ``.pkl`` or ``.npz`` as a dict of numpy arrays (and plain
    scalars).

    Raises:
        SMPLFileError: the file is missing, not a pickle / npz, or holds non-data objects.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SMPLFileError(
            f"[body.smpl_file] SMPL model file not found: {path} (download SMPL_NEUTRAL.pkl from "
            "https://smpl.is.tue.mpg.de under its licence, or convert it with `python -m "
            "mahmr_ros.cli convert-smpl`)"
        )
    data = path.read_bytes()
    if path.suffix == ".npz" or data[:2] == b"PK":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                raw = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise SMPLFileError(
                f"[body.smpl_file] {source}: not a readable .npz of plain arrays ({err})"
            ) from err
    else:
        try:
            raw = _RestrictedUnpickler(io.BytesIO(data), source).load()
        except SMPLFileError:
            raise
        except Exception as err:  # noqa: BLE001 - any unpickling failure is a malformed file
            raise SMPLFileError(
                f"[body.smpl_file] {source}: not a readable SMPL pickle ({err})"
            ) from err
    if not isinstance(raw, dict):
        raise SMPLFileError(
            f"[body.smpl_file] {source}: expected a dict of arrays, got {type(raw).__name__}"
        )
    return {str(k): _plain(v, str(k), source) for k, v in raw.items()}


def validate_arrays(arrays: dict, source: str) -> dict[str, np.ndarray]:
    """Check the SMPL arrays' presence and shapes; return them as float64 / int64 numpy arrays.

    Raises:
        SMPLFileError: a required key is missing or has the wrong shape (message names both).
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise SMPLFileError(
            f"[body.smpl_file] {source}: missing SMPL arrays {missing} (has {sorted(arrays)}); "
            "expected an official SMPL model file (SMPL_NEUTRAL.pkl) or its converted .npz"
        )
    out = {}
    for key in REQUIRED_KEYS:
        dtype = np.int64 if key in ("f", "kintree_table") else np.float64
        try:
            out[key] = np.asarray(arrays[key], dtype=dtype)
        except (TypeError, ValueError) as err:
            raise SMPLFileError(
                f"[body.smpl_file] {source}: '{key}' is not numeric ({err})"
            ) from err
    sizes = {
        "V": out["v_template"].shape[0],
        "S": out["shapedirs"].shape[-1] if out["shapedirs"].ndim else 0,
    }
    for key, expected in REQUIRED_KEYS.items():
        want = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in expected)
        shape = out[key].shape
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            raise SMPLFileError(
                f"[body.smpl_file] {source}: '{key}' has shape {shape}, expected {want} (V = "
                f"{sizes['V']})"
            )
    if sizes["S"] < 10:
        raise SMPLFileError(
            f"[body.smpl_file] {source}: shapedirs has {sizes['S']} components, expected >= 10"
        )
    if out["f"].min() < 0 or out["f"].max() >= sizes["V"]:
        raise SMPLFileError(f"[body.smpl_file] {source}: face indices outside [0, {sizes['V']})")
    for (
        key,
        value,
    ) in arrays.items():  # keep the optional numeric extras (e.g. joint_vertex_ids, J)
        if key not in out and isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            out[key] = value
    return out


def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate an SMPL-format model (``.pkl`` official / chumpy, or ``.npz``); no chumpy
    needed.

    Returns:
        Dict with at least ``v_template`` (V, 3), ``f`` (F, 3) int64, ``J_regressor`` (24, V)
        dense, ``weights`` (V, 24), ``kintree_table`` (2, 24) int64, ``shapedirs`` (V, 3, S),
        ``posedirs`` (V, 3, 207), in metres, SMPL's canonical frame (y up).
    """
    return validate_arrays(read_model_file(path), str(path))


def load_kid_template(path: str | Path, num_vertices: int) -> np.ndarray:
    """Read AGORA's ``smpl_kid_template.npy`` ((V, 3) metres), checking its shape against the
    body's V."""
    path = Path(path)
    if not path.is_file():
        raise SMPLFileError(
            f"[body.smpl_file] kid template not found: {path} (smpl_kid_template.npy from the "
            "AGORA download, under its licence)"
        )
    try:
        kid = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise SMPLFileError(f"[body.smpl_file] {path}: not a readable .npy array ({err})") from err
    if kid.shape != (num_vertices, 3) or kid.dtype.kind != "f":
        raise SMPLFileError(
            f"[body.smpl_file] {path}: kid template has shape {kid.shape} {kid.dtype}, expected "
            f"({num_vertices}, 3) float like the body model"
        )
    return kid.astype(np.float64)


def convert_smpl(src: str | Path, dst: str | Path) -> Path:
    """Convert an SMPL model file (official chumpy ``.pkl``) into a plain ``.npz`` (no pickle
    inside).

    Args:
        src: the licensed model file, e.g. ``SMPL_NEUTRAL.pkl``.
        dst: output path; ``.npz`` is appended when missing. Parent folders are created.

    Returns:
        The written path.

    Raises:
        SMPLFileError: the source is missing or malformed.
    """
    arrays = load_smpl_arrays(src)
    dst = Path(dst)
    if dst.suffix != ".npz":
        dst = dst.with_name(dst.name + ".npz")
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **arrays)
    return dst
