"""Synthetic SMPL-format files (never real body models) shared by the body tests."""

from __future__ import annotations

import pytest

from mahmr_ros.body import make_synthetic_smpl


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory):
    """(model .npz, kid template .npy) of the 6890-vertex synthetic body, seed 0."""
    root = tmp_path_factory.mktemp("smpl")
    model = make_synthetic_smpl(root / "SMPL_SYNTHETIC.npz", kid_template_path=root / "kid.npy")
    return model, root / "kid.npy"
