import pytest
import torch

from mahmr_ros.model import (
    TINY_OVERRIDES,
    CheckpointError,
    build_model,
    detect_config,
    load_checkpoint,
)

HUMAN_MODEL_KEYS = 8
RECOMPUTED = {"cam_intrinsics", "z_order_map", "y_coords", "x_coords"}


def _meta_state_dict(official_keys, config):
    return {
        k: torch.empty(shape, dtype=dtype, device="meta")
        for k, (shape, _, dtype) in official_keys(config).items()
    }


@pytest.mark.parametrize("config", ["fov_kid", "fov", "default"])
def test_official_key_sets_load_strictly_and_are_detected(official_keys, config):
    sd = _meta_state_dict(official_keys, config)
    assert detect_config(sd) == config
    with torch.device("meta"):
        model = build_model(config)
    report = load_checkpoint(model, sd, strict=True)
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    assert len([k for k in report["ignored"] if k.startswith("human_model.")]) == HUMAN_MODEL_KEYS
    assert RECOMPUTED <= set(report["ignored"])


@pytest.mark.slow
def test_full_size_fov_kid_seeded_checkpoint_loads_values(make_state_dict):
    """Full-size state_dict with exactly the official keys, shapes and dtypes (float64 mean_*),
    seeded."""
    sd = make_state_dict("fov_kid", seed=3)
    model = build_model("fov_kid")
    report = load_checkpoint(
        model, {"model": {"module." + k: v for k, v in sd.items()}}, strict=True
    )
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    loaded = model.state_dict()
    for key in (
        "encoder.blocks.11.mlp.fc2.weight",
        "encoder_pos_embeds",
        "fov_head.layers.3.bias",
        "decoder.decoder.layers.0.ca_qpos_proj.weight",
        "shape_head.5.layers.4.weight",
    ):
        assert torch.equal(loaded[key], sd[key]), key
    assert loaded["mean_pose"].dtype == torch.float32 and sd["mean_pose"].dtype == torch.float64
    assert torch.equal(loaded["mean_pose"], sd["mean_pose"].float())
    # Recomputed buffers keep our values, not the checkpoint's.
    assert not torch.equal(loaded["z_order_map"], sd["z_order_map"])


@pytest.fixture
def tiny_sd(tiny_model):
    return {k: v.clone() for k, v in tiny_model.state_dict().items()}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"model": {"module." + k: v for k, v in sd.items()}},
        lambda sd: {"state_dict": {"_orig_mod." + k: v for k, v in sd.items()}},
        lambda sd: {"module._orig_mod." + k: v for k, v in sd.items()},
    ],
    ids=["flat", "model+module", "state_dict+orig_mod", "both_prefixes"],
)
def test_wrappers_and_prefixes_from_a_file(tiny_sd, tmp_path, wrap):
    sd = dict(tiny_sd, **{"human_model.layer_n.v_template": torch.zeros(10, 3)})
    path = tmp_path / "ckpt.bin"
    torch.save(wrap(sd), path)
    torch.manual_seed(123)
    model = build_model(TINY_OVERRIDES)
    report = load_checkpoint(model, path)
    assert "human_model.layer_n.v_template" in report["ignored"]
    assert torch.equal(model.state_dict()["tgt_embed.weight"], tiny_sd["tgt_embed.weight"])


def _error(model, sd):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, sd, strict=True)
    return str(info.value)


def test_removed_added_and_reshaped_keys_are_listed_by_name(tiny_sd):
    model = build_model(TINY_OVERRIDES)
    removed = {k: v for k, v in tiny_sd.items() if k != "encoder.blocks.2.ls1.gamma"}
    assert "missing (1): encoder.blocks.2.ls1.gamma" in _error(model, removed)
    added = dict(tiny_sd, **{"encoder.blocks.99.attn.qkv.weight": torch.zeros(3)})
    assert "unexpected (1): encoder.blocks.99.attn.qkv.weight" in _error(model, added)
    reshaped = dict(tiny_sd, **{"conf_head.weight": torch.zeros(2, 64)})
    msg = _error(model, reshaped)
    assert "mismatched (1): conf_head.weight: checkpoint (2, 64) vs model (1, 64)" in msg
    assert "looks like config 'fov_kid'" in msg


def test_non_strict_loads_what_fits_and_reports(tiny_sd):
    torch.manual_seed(7)
    model = build_model(TINY_OVERRIDES)
    sd = {k: v for k, v in tiny_sd.items() if not k.startswith("fov_head.")}
    report = load_checkpoint(model, sd, strict=False)
    assert report["missing"] == [
        f"fov_head.layers.{i}.{p}" for i in range(4) for p in ("bias", "weight")
    ]
    assert torch.equal(model.state_dict()["feature_proj.weight"], tiny_sd["feature_proj.weight"])


def test_stage2_ten_betas_expand_to_eleven_with_zero_kid_blend(tiny_input):
    torch.manual_seed(5)
    fov = build_model({"preset": "fov", **TINY_OVERRIDES})
    with torch.no_grad():
        fov.mean_shape.normal_()
    kid = build_model(TINY_OVERRIDES)
    report = load_checkpoint(kid, fov.state_dict(), strict=True)
    assert (
        "shape_head.0.layers.4.weight" in report["expanded"] and "mean_shape" in report["expanded"]
    )
    assert report["detected_config"] == "fov"
    with torch.no_grad():
        a, b = fov(*tiny_input), kid(*tiny_input)
    assert torch.equal(b["pred_betas"][..., 10], torch.zeros_like(b["pred_betas"][..., 10]))
    assert torch.allclose(a["pred_betas"], b["pred_betas"][..., :10], atol=1e-6)


def test_stage1_checkpoint_into_fov_model_names_the_missing_head():
    default = build_model({"preset": "default", **TINY_OVERRIDES})
    fov = build_model({"preset": "fov", **TINY_OVERRIDES})
    msg = _error(fov, default.state_dict())
    assert "missing (8): fov_head.layers.0.bias" in msg and "looks like config 'default'" in msg
    report = load_checkpoint(fov, default.state_dict(), strict=False)
    assert "dn_enc.weight" in report["ignored"]


def test_missing_or_bad_file_errors(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        load_checkpoint(tiny_model, tmp_path / "nope.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.bin"):
        load_checkpoint(tiny_model, bad)
    torch.save({"epoch": 3}, tmp_path / "odd.bin")
    with pytest.raises(CheckpointError, match="expected a state_dict"):
        load_checkpoint(tiny_model, tmp_path / "odd.bin")


def test_safetensors_file_loads_and_a_corrupt_one_is_named(tiny_sd, tmp_path):
    from safetensors.torch import save_file

    # safetensors refuses shared storage: the bbox_embed aliases are stored once (as a
    # de-duplicated file).
    sd = {
        k: v.contiguous()
        for k, v in tiny_sd.items()
        if not k.startswith("decoder.decoder.bbox_embed.")
    }
    save_file(sd, str(tmp_path / "model.safetensors"))
    model = build_model(TINY_OVERRIDES)
    report = load_checkpoint(model, tmp_path / "model.safetensors")
    assert "decoder.decoder.bbox_embed.0.layers.0.weight" in report["aliased"]
    assert torch.equal(model.state_dict()["tgt_embed.weight"], tiny_sd["tgt_embed.weight"])
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        load_checkpoint(model, tmp_path / "broken.safetensors")
