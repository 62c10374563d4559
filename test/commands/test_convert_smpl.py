import pickle

import numpy as np

from mahmr_ros import cli
from mahmr_ros.body import SMPLBody, synthetic_smpl_arrays


def test_converts_a_pickle_to_a_plain_npz_that_loads(tmp_path, capsys):
    arrays = synthetic_smpl_arrays(700)
    arrays.pop("kid_template")
    (tmp_path / "model.pkl").write_bytes(
        pickle.dumps({k: v for k, v in arrays.items()}, protocol=2)
    )
    assert cli.main(["convert-smpl", str(tmp_path / "model.pkl")]) == 0
    assert "700 vertices, 10 shape components" in capsys.readouterr().out
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["v_template"], arrays["v_template"])
    body = SMPLBody(tmp_path / "model.npz")
    assert body.num_vertices == 700


def test_bad_input_returns_an_error_naming_the_file(tmp_path, capsys):
    assert cli.main(["convert-smpl", str(tmp_path / "SMPL_NEUTRAL.pkl")]) == 1
    assert "SMPL_NEUTRAL.pkl" in capsys.readouterr().err
    (tmp_path / "m.npz").write_bytes(b"")
    assert cli.main(["convert-smpl", str(tmp_path / "m.npz")]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
