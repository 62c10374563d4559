"""Training config files (``training/configs/*.yaml``): loading, ``--set`` overrides and a schema
check.

A config is one YAML file with the sections ``model`` (``build_model`` overrides), ``init`` and
``init_checkpoint`` (starting weights), ``body`` (SMPL files), ``data`` (root folder, datasets with
their per-epoch fractions), ``augment``, ``optim``, ``train``, ``loss_weights`` (spec mahmr_model
§4.3, §5), optionally ``dn`` (stage-1 denoising) and ``eval`` (evaluation during training,
best-checkpoint selection). Every key is checked against ``SCHEMA``: a typo such as ``--set
train.bacth_size=8`` is an error that names the closest known key instead of a silently ignored
entry. Relative data paths are resolved against ``data.root``; relative body / checkpoint paths
against the current directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path

import yaml

from training.data.augment import AugmentConfig
from training.denoising import DNConfig

REQUIRED = ("model", "body", "data", "optim", "train", "loss_weights")
#: Loss names of ``training.losses.criterion`` (spec §4.2).
LOSS_NAMES = ("confs", "boxes", "giou", "j2ds", "poses", "betas", "j3ds", "depths", "depths_mt",
              "depths_re", "fov", "map_confs", "map_scales")  # fmt: skip
#: Allowed keys per section (None = free-form: checked by its own consumer).
SCHEMA: dict = {
    "model": None,  # build_model overrides, validated by mahmr_ros.model.resolve_config
    "init_checkpoint": None,
    "init": {"smpl_mean_params", "backbone"},
    "output_dir": None,
    "body": {
        "smpl",
        "kid_template",
        "smpl_male",
        "smpl_female",
        "allow_neutral_gt",
        "extra_regressor",
        "h36m_regressor",
        "body_verts",
    },  # fmt: skip
    "data": {"root", "epoch_length", "datasets"},
    "augment": {f.name for f in dataclasses.fields(AugmentConfig)},
    "optim": {"lr", "lr_encoder", "weight_decay", "clip_grad"},
    "train": {
        "epochs",
        "batch_size",
        "num_workers",
        "seed",
        "amp",
        "log_every",
        "max_steps",
        "save_every",
        "joint_set",
        "grad_accum",
        "activation_checkpointing",
        "keep_checkpoints",
    },  # fmt: skip
    "loss_weights": set(LOSS_NAMES),
    "dn": {f.name for f in dataclasses.fields(DNConfig)} | {"enabled"},
    "eval": {"every_epochs", "every_steps", "conf", "benchmarks", "select"},
}
DATASET_KEYS = {"format", "annots", "images", "kwargs", "fraction"}
EVAL_BENCHMARK_KEYS = {"benchmark", "annots", "images", "limit"}


def set_path(cfg: dict, dotted: str, value) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted = "a.b"`` (creating dicts on the way)."""
    keys = dotted.split(".")
    node = cfg
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"[training.config] cannot set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def _unknown(keys, allowed, where: str, source) -> None:
    bad = sorted(set(keys) - set(allowed))
    if bad:
        hints = []
        for key in bad:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"[training.config] {source}: unknown key(s) in {where}: {', '.join(hints)}; "
            f"known: {sorted(allowed)}"
        )


def check_schema(cfg: dict, source="config") -> None:
    """Raise ``ValueError`` naming every unknown section or key (with the closest known one)."""
    _unknown(cfg, SCHEMA, "the top level", source)
    for section, allowed in SCHEMA.items():
        value = cfg.get(section)
        if allowed is None or value is None:
            continue
        if not isinstance(value, dict):
            raise ValueError(f"[training.config] {source}: section {section!r} must be a mapping")
        _unknown(value, allowed, section, source)
    for i, entry in enumerate(cfg["data"].get("datasets") or []):
        if "weight" in entry:
            raise ValueError(
                f"[training.config] {source}: data.datasets[{i}] has 'weight'; the per-epoch "
                "share is now 'fraction' (samples per epoch / dataset size, 1.0 = one pass, the "
                "official recipe)"
            )
        _unknown(entry, DATASET_KEYS, f"data.datasets[{i}]", source)
    for i, entry in enumerate((cfg.get("eval") or {}).get("benchmarks") or []):
        _unknown(entry, EVAL_BENCHMARK_KEYS, f"eval.benchmarks[{i}]", source)
    if cfg.get("model") is not None:
        from mahmr_ros.model import resolve_config

        resolve_config(cfg["model"])  # unknown model fields raise here, before any data is read


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read a YAML config, apply ``key.path=value`` overrides (values parsed as YAML) and check the
    schema.

    Raises:
        FileNotFoundError / ValueError naming the file and the missing, unknown or malformed entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"[training.config] config file not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(
                f"[training.config] override {item!r} must look like section.key=value"
            )
        key, value = item.split("=", 1)
        set_path(cfg, key.strip(), yaml.safe_load(value))
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ValueError(
            f"[training.config] {path}: missing sections {missing} (expected {list(REQUIRED)})"
        )
    datasets = cfg["data"].get("datasets") or []
    if not datasets:
        raise ValueError(f"[training.config] {path}: data.datasets is empty")
    for i, d in enumerate(datasets):
        absent = [k for k in ("format", "annots", "images") if k not in d]
        if absent:
            raise ValueError(f"[training.config] {path}: data.datasets[{i}] lacks {absent}")
    check_schema(cfg, path)
    return cfg


def data_path(cfg: dict, value: str | Path) -> Path:
    """Resolve a dataset path against ``data.root`` (absolute paths are kept)."""
    value = Path(value)
    return value if value.is_absolute() else Path(cfg["data"].get("root", ".")) / value
