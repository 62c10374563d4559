"""Shared fixtures of the training tests: the synthetic mini-datasets (written once per
session)."""

from __future__ import annotations

import json

import pytest

from training.synthetic import generate


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Folder holding every synthetic format, written by ``training.synthetic.generate`` (seed
    0)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, seed=0, images_per_format=3)
    return root


@pytest.fixture(scope="session")
def manifest(synthetic_root):
    return json.loads((synthetic_root / "manifest.json").read_text())


@pytest.fixture(scope="session")
def synthetic_smpl(tmp_path_factory):
    """(model.npz, kid_template.npy): a SYNTHETIC 700-vertex SMPL-format body (not a real body
    model)."""
    from mahmr_ros.body.synthetic import make_synthetic_smpl

    root = tmp_path_factory.mktemp("smpl")
    model = make_synthetic_smpl(
        root / "smpl.npz", num_vertices=700, kid_template_path=root / "kid.npy"
    )
    return model, root / "kid.npy"


@pytest.fixture(scope="session")
def body(synthetic_smpl):
    """The neutral SYNTHETIC SMPL layer with 11 betas (10 PCs + the kid blend)."""
    from training.smpl_layer import SMPLLayer

    return SMPLLayer(*synthetic_smpl, num_betas=11)


@pytest.fixture(scope="session")
def gendered_files(tmp_path_factory, synthetic_smpl):
    """{"male": npz, "female": npz}: SYNTHETIC gendered models, the neutral template scaled by 1 +
    dy and shifted dy up (dy = 0.04 / -0.03), so each model's meshes and root joints differ from
    the neutral one."""
    import numpy as np

    root = tmp_path_factory.mktemp("gendered")
    files = {}
    for gender, dy in (("male", 0.04), ("female", -0.03)):
        arrays = dict(np.load(synthetic_smpl[0]))
        arrays["v_template"] = arrays["v_template"] * (1 + dy) + [0.0, dy, 0.0]
        files[gender] = root / f"{gender}.npz"
        np.savez(files[gender], **arrays)
    return files


@pytest.fixture(scope="session")
def gendered(body, gendered_files, synthetic_smpl):
    """``GenderedBody`` of the neutral ``body`` and the ``gendered_files`` models (3DPW GT is
    gendered)."""
    from training.data.body import GenderedBody
    from training.smpl_layer import SMPLLayer

    layers = {g: SMPLLayer(f, synthetic_smpl[1], num_betas=11) for g, f in gendered_files.items()}
    return GenderedBody(body, **layers)
