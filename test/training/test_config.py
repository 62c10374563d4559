"""Config files: every shipped YAML loads, overrides parse as YAML, bad files name what is
wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import data_path, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "training" / "configs").glob("*.yaml"))
# Official loss weights per run config (spec mahmr_model §4.3), spot checks.
EXPECTED = {
    "stage1": {"depths": 0.5, "j2ds": 40, "map_confs": 4},
    "stage2": {"fov": 0.5, "depths": 0},
    "stage3": {"depths_mt": 0.5, "fov": 0.5, "j3ds": 8},
    "3dpw_ft": {"j3ds": 10, "confs": 2},
    "hi4d_ft": {"betas": 0, "fov": 1},
    "rh_ft": {"depths_re": 0.5, "j2ds": 10, "boxes": 0},
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load_with_the_official_weights(path):
    cfg = load_config(path)
    for key, value in EXPECTED.get(path.stem, {}).items():
        assert cfg["loss_weights"][key] == value
    assert cfg["optim"]["weight_decay"] == 1e-4 and cfg["optim"]["clip_grad"] == 1.0


def test_overrides_and_paths(tmp_path):
    cfg = load_config(
        CONFIGS[0], ["train.batch_size=3", "data.root=/x", "augment.scale_range=[1, 2]"]
    )
    assert cfg["train"]["batch_size"] == 3 and cfg["augment"]["scale_range"] == [1, 2]
    assert data_path(cfg, "a/b.npz") == Path("/x/a/b.npz") and data_path(cfg, "/abs") == Path(
        "/abs"
    )
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(CONFIGS[0], ["nonsense"])
    (tmp_path / "bad.yaml").write_text("model: {}\n")
    with pytest.raises(ValueError, match="missing sections"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
