import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx
from smplx.utils import Struct

from mahmr_ros.body import (
    SMPLBody,
    SMPLFileError,
    convert_smpl,
    load_smpl_arrays,
    synthetic_smpl_arrays,
)


class _FakeCh:
    """Pickles like chumpy's ``Ch``: state = __dict__ with the value in ``x`` (plus chumpy
    bookkeeping)."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None

    def __getstate__(self):
        return dict(self.__dict__)


class _FakeAdd(_FakeCh):
    """A derived chumpy expression: no stored ``x``."""

    def __init__(self, a, b):
        self.a, self.b = a, b


def _official_like_pickle(path, num_vertices=700, derived=False):
    """Write a pickle laid out like the official chumpy SMPL file: Ch shapedirs, sparse
    J_regressor."""
    arrays = synthetic_smpl_arrays(num_vertices)
    arrays.pop("kid_template")
    arrays.pop("description")
    module = types.ModuleType("chumpy.ch")
    _FakeCh.__module__ = _FakeAdd.__module__ = "chumpy.ch"
    _FakeCh.__qualname__, _FakeAdd.__qualname__ = "Ch", "add"
    module.Ch, module.add = _FakeCh, _FakeAdd
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        data = dict(arrays)
        data["shapedirs"] = _FakeCh(arrays["shapedirs"])
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        data["bs_style"] = "lbs"
        if derived:
            data["posedirs"] = _FakeAdd(_FakeCh(arrays["posedirs"]), _FakeCh(arrays["posedirs"]))
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
        _FakeCh.__module__ = _FakeAdd.__module__ = __name__
    return arrays


def test_chumpy_pickle_reads_without_chumpy_and_converts_to_plain_npz(tmp_path):
    src = tmp_path / "SMPL_NEUTRAL.pkl"
    arrays = _official_like_pickle(src)
    assert "chumpy" not in sys.modules
    loaded = load_smpl_arrays(src)
    for key in ("shapedirs", "J_regressor", "v_template", "posedirs"):
        assert np.array_equal(loaded[key], arrays[key]), key
    out = convert_smpl(src, tmp_path / "out" / "smpl_neutral")
    assert out.name == "smpl_neutral.npz"
    with np.load(out, allow_pickle=False) as npz:  # no pickle inside
        layer = smplx.SMPL(
            str(out), data_struct=Struct(**dict(npz)), vertex_ids=_ids(npz["joint_vertex_ids"])
        )
    assert layer.v_template.shape == (700, 3)
    a, b = SMPLBody(src), SMPLBody(out)
    pose = np.random.default_rng(0).normal(0, 0.3, (2, 72))
    betas = np.random.default_rng(1).normal(0, 1, (2, 10))
    assert np.allclose(a.forward(pose, betas)[0], b.forward(pose, betas)[0])


def _ids(ids):
    from mahmr_ros.body.synthetic import VERTEX_JOINT_KEYS

    return dict(zip(VERTEX_JOINT_KEYS, ids.tolist()))


def test_derived_chumpy_expression_is_named(tmp_path):
    src = tmp_path / "model.pkl"
    _official_like_pickle(src, derived=True)
    with pytest.raises(SMPLFileError, match=r"model\.pkl.*'posedirs'.*chumpy\.ch\.add"):
        load_smpl_arrays(src)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_code_in_a_pickle_is_refused(tmp_path):
    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"v_template": _Evil()}))
    with pytest.raises(
        SMPLFileError, match=r"evil\.pkl.*refusing to unpickle '(posix|os|nt)\.system'"
    ):
        load_smpl_arrays(src)


def test_missing_malformed_and_incomplete_files_name_the_file_and_key(tmp_path):
    with pytest.raises(SMPLFileError, match=r"not found: .*nope\.pkl"):
        load_smpl_arrays(tmp_path / "nope.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x00garbage")
    with pytest.raises(SMPLFileError, match=r"junk\.pkl: not a readable SMPL pickle"):
        load_smpl_arrays(tmp_path / "junk.pkl")
    arrays = synthetic_smpl_arrays(700)
    del arrays["posedirs"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(SMPLFileError, match=r"partial\.npz: missing SMPL arrays \['posedirs'\]"):
        load_smpl_arrays(tmp_path / "partial.npz")
    arrays = synthetic_smpl_arrays(700)
    arrays["weights"] = arrays["weights"][:, :23]
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(
        SMPLFileError, match=r"'weights' has shape \(700, 23\), expected \(700, 24\)"
    ):
        load_smpl_arrays(tmp_path / "shape.npz")
