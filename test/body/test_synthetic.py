import numpy as np
import pytest
import trimesh

from mahmr_ros.body import make_synthetic_smpl, synthetic_smpl_arrays
from mahmr_ros.body.synthetic import SMPL_PARENTS, SMPL_VERTEX_JOINT_IDS


@pytest.mark.parametrize("num_vertices", [6890, 700])
def test_structure_is_a_valid_closed_rigged_smpl_format_body(num_vertices):
    a = synthetic_smpl_arrays(num_vertices, seed=0)
    V = num_vertices
    assert a["v_template"].shape == (V, 3) and a["shapedirs"].shape == (V, 3, 10)
    assert a["posedirs"].shape == (V, 3, 207) and a["weights"].shape == (V, 24)
    assert (
        a["J_regressor"].shape == (24, V)
        and a["kintree_table"][0].tolist() == SMPL_PARENTS.tolist()
    )
    assert np.allclose(a["weights"].sum(1), 1) and np.allclose(a["J_regressor"].sum(1), 1)
    mesh = trimesh.Trimesh(a["v_template"], a["f"], process=False)
    # Closed and outward-oriented: positive volume, plausible for a 1.70 m person (~60-90 litres).
    assert mesh.is_watertight and mesh.is_winding_consistent and 0.05 < mesh.volume < 0.1
    height = np.ptp(a["v_template"][:, 1])
    kid_height = np.ptp(a["kid_template"][:, 1])
    assert abs(height - 1.70) < 0.01 and abs(kid_height - 1.10) < 0.02
    assert bool(a["synthetic"]) and "SYNTHETIC" in str(a["description"])
    joints = a["J_regressor"] @ a["v_template"]
    # Head above the neck above the pelvis above the knees (y up); left hip (1) at +x (body's
    # left).
    assert (
        joints[15, 1] > joints[12, 1] > joints[0, 1] > joints[4, 1]
        and joints[1, 0] > 0 > joints[2, 0]
    )


def test_smpl_vertex_joint_indices_only_at_6890():
    assert synthetic_smpl_arrays(6890)["joint_vertex_ids"].tolist() == list(SMPL_VERTEX_JOINT_IDS)
    ids = synthetic_smpl_arrays(700)["joint_vertex_ids"]
    assert len(set(ids.tolist())) == 21 and ids.max() < 700


def test_deterministic_per_seed(tmp_path):
    a = make_synthetic_smpl(tmp_path / "a.npz", seed=3)
    b = make_synthetic_smpl(tmp_path / "b.npz", seed=3)
    c = synthetic_smpl_arrays(6890, seed=4)
    with np.load(a) as fa, np.load(b) as fb:
        for key in fa.files:
            assert np.array_equal(fa[key], fb[key]), key
        assert not np.array_equal(fa["posedirs"], c["posedirs"])
        assert np.array_equal(
            fa["v_template"], c["v_template"]
        )  # the seed never changes the rest shape


def test_bad_suffix_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz or \.pkl"):
        make_synthetic_smpl(tmp_path / "model.txt")
