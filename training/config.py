"""Training config files (``training/configs/*.yaml``): loading, ``--set`` overrides and checks.

A config is one YAML file with the sections ``model`` (``build_model`` overrides), ``init_checkpoint``,
``body`` (SMPL files), ``data`` (root folder, datasets with weights, epoch length), ``augment``, ``optim``,
``train`` and ``loss_weights`` (spec mahmr_model §4.3, §5). Relative data paths are resolved against
``data.root``; relative body / checkpoint paths against the current directory.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REQUIRED = ("model", "body", "data", "optim", "train", "loss_weights")


def set_path(cfg: dict, dotted: str, value) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted = "a.b"`` (creating dicts on the way)."""
    keys = dotted.split(".")
    node = cfg
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"[training.config] cannot set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read a YAML config and apply ``key.path=value`` overrides (values parsed as YAML).

    Raises:
        FileNotFoundError / ValueError naming the file and the missing or malformed section.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"[training.config] config file not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"[training.config] override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        set_path(cfg, key.strip(), yaml.safe_load(value))
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"[training.config] {path}: missing sections {missing} (expected {list(REQUIRED)})")
    datasets = cfg["data"].get("datasets") or []
    if not datasets:
        raise ValueError(f"[training.config] {path}: data.datasets is empty")
    for i, d in enumerate(datasets):
        absent = [k for k in ("format", "annots", "images") if k not in d]
        if absent:
            raise ValueError(f"[training.config] {path}: data.datasets[{i}] lacks {absent}")
    return cfg


def data_path(cfg: dict, value: str | Path) -> Path:
    """Resolve a dataset path against ``data.root`` (absolute paths are kept)."""
    value = Path(value)
    return value if value.is_absolute() else Path(cfg["data"].get("root", ".")) / value
