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
