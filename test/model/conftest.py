"""Fixtures of the model tests: a seeded tiny fov_kid-layout network and state_dicts built from the
spec's key listings (``shared/spec/state_dicts/*.tsv``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "spec" / "state_dicts"
if (
    not SPEC_DIR.is_dir()
):  # CI clones the repo with ../shared beside it; a worktree may sit elsewhere
    SPEC_DIR = Path("/work/shared/spec/state_dicts")

DTYPES = {
    "torch.float32": torch.float32,
    "torch.float64": torch.float64,
    "torch.int64": torch.int64,
}


def read_tsv(config: str) -> dict[str, tuple[tuple[int, ...], str, torch.dtype]]:
    """{key: (shape, 'param'|'buffer', dtype)} from the official key listing of ``config``."""
    out = {}
    for line in (SPEC_DIR / f"{config}.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape, kind, dtype = line.split("\t")
        out[key] = (tuple(ast.literal_eval(shape)), kind, DTYPES[dtype])
    return out


def seeded_state_dict(config: str, seed: int = 0, std: float = 0.02) -> dict[str, torch.Tensor]:
    """A state_dict with EXACTLY the official keys, shapes and dtypes of ``config``, seeded values.

    Float tensors are N(0, std^2); int buffers are small non-negative ints; the ``bbox_embed``
    aliases share their twin's values as in the real files.
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, (shape, _kind, dtype) in read_tsv(config).items():
        if key.startswith("decoder.decoder.bbox_embed."):
            continue
        if dtype.is_floating_point:
            out[key] = (torch.randn(shape, generator=gen) * std).to(dtype)
        else:
            out[key] = torch.randint(0, 20, shape, generator=gen, dtype=dtype)
    for key in [k for k in out if k.startswith("bbox_embed.")]:
        out["decoder.decoder." + key] = out[key]
    return out


@pytest.fixture(scope="session")
def tiny_model():
    torch.manual_seed(0)
    return build_model(TINY_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_input():
    """(2, 3, 224, 168) seeded images and their (h', w') (different resized sizes, same
    padding)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 224, 168, generator=gen), torch.tensor([[224, 160], [220, 168]])


@pytest.fixture(scope="session")
def official_keys():
    """``read_tsv`` as a fixture: config name -> {key: (shape, kind, dtype)}."""
    return read_tsv


@pytest.fixture(scope="session")
def make_state_dict():
    """``seeded_state_dict`` as a fixture."""
    return seeded_state_dict
