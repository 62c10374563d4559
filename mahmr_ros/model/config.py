"""Model presets (the three official configs, spec §1.2-1.3) and ``build_model``.

A config is a name (``"fov_kid"``, ``"fov"``, ``"default"``) or a dict of overrides on a preset
(``{"preset": "fov_kid", "encoder": "vits", "dec_layers": 2, ...}``), like timm's
``dict(model_args, **kwargs)``.
Only this module reads configs; the modules themselves take explicit typed arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

# DINOv2 ViT sizes: embedding width, number of main blocks, attention heads.
ENCODER_SIZES: dict[str, dict[str, int]] = {
    "vits": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "vitb": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "vitl": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}


@dataclass(frozen=True)
class ModelConfig:
    """Every field that shapes the network (spec §1.2). Defaults = the released ``fov_kid`` model.

    Attributes:
        encoder: DINOv2 size name, ``vits`` / ``vitb`` / ``vitl`` (sets the three fields below
            unless given).
        embed_dim: encoder token width C.
        depth: number of main encoder blocks (``encoder.blocks.*``).
        num_heads: encoder attention heads.
        mlp_ratio: encoder MLP hidden width / C.
        input_size: long side of the network input in pixels; a multiple of 56 (SAT needs 2x2
            groups of 28 px).
        patch_size: ViT patch size (14 for DINOv2).
        get_map_layer: blocks run by the scale-map pass (``additional_blocks``) and by the lvl0
            pass (``blocks[0:get_map_layer]``).
        conf_thresh: SAT scale-map "person present" threshold (strict >).
        scale_thresh: SAT "small person" threshold on the scale channel (strict <).
        sat_official_quirk: reproduce the official MA-HMR behaviour of keeping high-res cells as
            lvl1 tokens too when an image has no pooled group (spec §1.5 step 5), applied per
            image.
        hidden_dim: decoder width D.
        nheads: decoder attention heads.
        dec_layers: decoder layers (each with its own box / pose / shape head).
        dim_feedforward: decoder FFN width.
        num_queries: Q, box queries.
        num_betas: 11 (10 SMPL PCs + kid blend) or 10.
        use_fov: add the FoV head (MA-HMR stages 2-3); without it the camera has a fixed 60° FoV.
        use_dn: keep the (inference-unused) denoising embedding ``dn_enc`` so stage-1 / SAT-HMR
            checkpoints load strictly.
    """

    encoder: str = "vitb"
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    input_size: int = 1288
    patch_size: int = 14
    get_map_layer: int = 3
    conf_thresh: float = 0.3
    scale_thresh: float = 0.5
    sat_official_quirk: bool = True
    hidden_dim: int = 768
    nheads: int = 4
    dec_layers: int = 6
    dim_feedforward: int = 2048
    num_queries: int = 50
    num_betas: int = 11
    use_fov: bool = True
    use_dn: bool = False

    @property
    def grid_lvl0(self) -> int:
        """Canvas size of the 14-px level (92 at 1288)."""
        return self.input_size // self.patch_size

    @property
    def grid_lvl1(self) -> int:
        """Canvas size of the 28-px level (46 at 1288)."""
        return self.input_size // (2 * self.patch_size)

    def check_network_hw(self, hw, what: str = "network input") -> None:
        """Raise a clear ``ValueError`` unless the (Hp, Wp) pixel size has both sides multiples of
        4 x patch_size (56) and the long side <= ``input_size``: the sizes ``preprocess``
        produces."""
        Hp, Wp = (int(side) for side in hw)
        step = 4 * self.patch_size
        if Hp % step or Wp % step or max(Hp, Wp) > self.input_size:
            raise ValueError(
                f"[model] {what} {Hp}x{Wp} must have both sides multiples of {step} and the long "
                f"side <= input_size={self.input_size} (use mahmr_ros.model.preprocess)"
            )


PRESETS: dict[str, dict] = {
    "fov_kid": {},
    "fov": {"num_betas": 10},
    "default": {"num_betas": 10, "use_fov": False, "use_dn": True},
}

# A CPU-fast model with the fov_kid layout (tests, examples): vits-like width 64, 2 decoder layers,
# 224 px.
TINY_OVERRIDES: dict = {
    "encoder": "vits",
    "embed_dim": 64,
    "depth": 5,
    "num_heads": 2,
    "input_size": 224,
    "hidden_dim": 64,
    "nheads": 2,
    "dec_layers": 2,
    "dim_feedforward": 128,
    "num_queries": 8,
}


def resolve_config(config: str | Mapping | ModelConfig = "fov_kid") -> ModelConfig:
    """Turn a preset name or an override dict into a validated ``ModelConfig``.

    Args:
        config: ``"fov_kid"`` / ``"fov"`` / ``"default"``; or a dict with an optional ``"preset"``
            key (default ``"fov_kid"``) and any ``ModelConfig`` field; or a ``ModelConfig``.

    Raises:
        ValueError: unknown preset or field, or values that cannot build a network (message names
            the field).
    """
    if isinstance(config, ModelConfig):
        return _validate(config)
    if isinstance(config, str):
        overrides: dict = {"preset": config}
    elif isinstance(config, Mapping):
        overrides = dict(config)
    else:
        raise ValueError(
            f"[model.config] config must be a preset name or a dict, got {type(config).__name__}"
        )
    preset = overrides.pop("preset", "fov_kid")
    if preset not in PRESETS:
        raise ValueError(f"[model.config] unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"[model.config] unknown config field(s) {unknown} (known: {sorted(fields)})"
        )
    merged = {**PRESETS[preset], **overrides}
    size = merged.get("encoder", ModelConfig.encoder)
    if size not in ENCODER_SIZES:
        raise ValueError(
            f"[model.config] unknown encoder '{size}' (known: {', '.join(ENCODER_SIZES)})"
        )
    merged = {**ENCODER_SIZES[size], **merged}
    return _validate(ModelConfig(**merged))


def _validate(cfg: ModelConfig) -> ModelConfig:
    checks = [
        (
            cfg.input_size > 0 and cfg.input_size % (4 * cfg.patch_size) == 0,
            f"input_size={cfg.input_size} must be a positive multiple of {4 * cfg.patch_size} "
            "(4 x patch_size)",
        ),
        (
            cfg.embed_dim % cfg.num_heads == 0,
            f"embed_dim={cfg.embed_dim} not divisible by num_heads={cfg.num_heads}",
        ),
        (
            cfg.hidden_dim % (2 * cfg.nheads) == 0,
            f"hidden_dim={cfg.hidden_dim} must be divisible by 2 x nheads={cfg.nheads}",
        ),
        (
            0 < cfg.get_map_layer < cfg.depth,
            f"get_map_layer={cfg.get_map_layer} must be in [1, depth={cfg.depth})",
        ),
        (cfg.num_betas in (10, 11), f"num_betas={cfg.num_betas} must be 10 or 11"),
        (cfg.dec_layers >= 1 and cfg.num_queries >= 1, "dec_layers and num_queries must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"[model.config] {message}")
    return cfg


def build_model(config: str | Mapping | ModelConfig = "fov_kid"):
    """Build a ``MetricAwareHMR`` in eval mode, float32, on the CPU, with freshly initialised
    weights.

    Args:
        config: preset name or override dict (see ``resolve_config``), e.g.
            ``build_model({"preset": "fov_kid", **TINY_OVERRIDES})`` for a tiny test model.

    Returns:
        The network; load weights with ``load_checkpoint``.
    """
    from mahmr_ros.model.network import MetricAwareHMR

    return MetricAwareHMR(resolve_config(config)).float().eval()
