"""Shared fixtures of the training tests: the synthetic mini-datasets (written once per session)."""

from __future__ import annotations

import json

import pytest

from training.synthetic import generate


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Folder holding every synthetic format, written by ``training.synthetic.generate`` (seed 0)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, seed=0, images_per_format=3)
    return root


@pytest.fixture(scope="session")
def manifest(synthetic_root):
    return json.loads((synthetic_root / "manifest.json").read_text())


@pytest.fixture(scope="session")
def synthetic_smpl(tmp_path_factory):
    """(model.npz, kid_template.npy): a SYNTHETIC 700-vertex SMPL-format body (not a real body model)."""
    from mahmr_ros.body.synthetic import make_synthetic_smpl

    root = tmp_path_factory.mktemp("smpl")
    model = make_synthetic_smpl(root / "smpl.npz", num_vertices=700, kid_template_path=root / "kid.npy")
    return model, root / "kid.npy"
