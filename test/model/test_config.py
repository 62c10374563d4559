import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model, resolve_config


@pytest.mark.parametrize("config", ["fov_kid", "fov", "default"])
def test_state_dict_keys_and_shapes_match_official_listing(config, official_keys):
    with torch.device("meta"):
        model = build_model(config)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = {
        k: v[0] for k, v in official_keys(config).items() if not k.startswith("human_model.")
    }
    assert set(ours) == set(official)
    assert {k: s for k, s in ours.items() if s != official[k]} == {}


@pytest.mark.parametrize(
    "config,total", [("fov_kid", 223_663_115), ("fov", 223_658_501), ("default", 221_949_700)]
)
def test_parameter_totals_match_spec(config, total):
    with torch.device("meta"):
        model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == total


def test_encoder_sizes_and_overrides():
    assert resolve_config({"encoder": "vitl"}).embed_dim == 1024
    assert resolve_config({"encoder": "vitl"}).depth == 24
    assert resolve_config({"encoder": "vits", "embed_dim": 64, "num_heads": 2}).embed_dim == 64
    cfg = resolve_config({"preset": "default", **TINY_OVERRIDES})
    assert (cfg.num_betas, cfg.use_fov, cfg.use_dn, cfg.input_size) == (10, False, True, 224)
    assert resolve_config({"sat_official_quirk": False}).sat_official_quirk is False


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"preset": "huge"}, "unknown preset"),
        ({"dec_layer": 2}, "dec_layer"),
        ({"encoder": "vitx"}, "unknown encoder"),
        ({"input_size": 1280}, "multiple of 56"),
        ({"num_betas": 12}, "num_betas"),
    ],
)
def test_bad_config_names_the_field(bad, needle):
    with pytest.raises(ValueError, match=needle):
        resolve_config(bad)


def test_build_model_is_eval_float32(tiny_model):
    assert not tiny_model.training
    assert all(p.dtype == torch.float32 for p in tiny_model.parameters())
    # One box head module, registered under both official key paths.
    assert tiny_model.bbox_embed is tiny_model.decoder.decoder.bbox_embed


def test_network_size_check_names_the_rule():
    """One rule for the network input (model, staged runner, export): sides multiples of 4 x
    patch_size and the long side <= input_size (TINY: 224 px, patch 14 -> 56)."""
    cfg = resolve_config({"preset": "fov_kid", **TINY_OVERRIDES})
    cfg.check_network_hw((168, 224))  # fine: no error
    with pytest.raises(
        ValueError, match=r"network input 100x224 must have both sides multiples of 56"
    ):
        cfg.check_network_hw((100, 224))
    with pytest.raises(ValueError, match=r"padded_hw 224x280 .* <= input_size=224"):
        cfg.check_network_hw((224, 280), "padded_hw")
