"""Loading the official checkpoints (``mahmr_stage{1,2,3}.bin``, ``sat_644.pth``) into
``MetricAwareHMR``.

All key adaptation is a pure ``state_dict -> state_dict`` step here (spec §2.4), then a strict
comparison against the model that reports every missing, unexpected and mis-shaped key by name:

1. unwrap ``{'model'|'state_dict': ...}``; strip leading ``module.`` / ``_orig_mod.`` prefixes;
2. drop ``human_model.*`` (SMPL data: we use the user's own licensed files) and the recomputed
   buffers (``cam_intrinsics``, z-order maps);
3. drop ``dn_enc.*`` (training-only denoising) when the model has none;
4. stage 2 -> 3: expand a 10-beta shape head to 11 (zero row + zero bias, ``mean_shape`` gets a 0),
   the official procedure of spec §2.3;
5. fill a missing ``bbox_embed`` / ``decoder.decoder.bbox_embed`` alias from its twin; cast
   ``mean_*`` to float32.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

PREFIXES = ("module.", "_orig_mod.")
WRAPPERS = ("model", "state_dict")
IGNORED_PREFIXES = ("human_model.",)
RECOMPUTED_BUFFERS = ("cam_intrinsics", "z_order_map", "y_coords", "x_coords")
BBOX_ALIAS = ("bbox_embed.", "decoder.decoder.bbox_embed.")


class CheckpointError(RuntimeError):
    """A checkpoint that does not fit the model; the message lists the offending keys."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load`` a checkpoint file on the CPU with ``weights_only=True`` (or read a
    ``.safetensors`` file) and unwrap it.

    Raises:
        FileNotFoundError: the file does not exist (message says where to get the weights).
        CheckpointError: the file is not a (wrapped) dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"[model.checkpoint] weights file not found: {path} (download mahmr_stage3.bin from "
            "the MA-HMR project page on GitHub and pass its path, e.g. --weights / model.weights)"
        )
    if path.suffix == ".safetensors":  # accelerate's save_state(safe_serialization=True) layout
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise CheckpointError(
                f"[model.checkpoint] {path}: reading .safetensors needs `pip install safetensors`"
            ) from err
        try:
            return unwrap(load_file(str(path), device="cpu"), source=str(path))
        except Exception as err:  # noqa: BLE001 - re-raised with the path
            raise CheckpointError(
                f"[model.checkpoint] cannot read {path} as safetensors: {err}"
            ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise CheckpointError(
            f"[model.checkpoint] cannot read {path} as a torch checkpoint: {err}"
        ) from err
    return unwrap(obj, source=str(path))


def unwrap(obj: object, source: str = "state_dict") -> dict[str, torch.Tensor]:
    """Unwrap ``{'model'|'state_dict': sd}`` (nested too) and strip ``module.`` / ``_orig_mod.``
    prefixes."""
    while isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        inner = next((obj[k] for k in WRAPPERS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            raise CheckpointError(
                f"[model.checkpoint] {source}: expected a state_dict (or {{'model'|'state_dict': "
                f"...}}), got a dict with keys {sorted(map(str, obj))[:10]}"
            )
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"[model.checkpoint] {source}: expected a state_dict, got {type(obj).__name__}"
        )
    out = {}
    for key, value in obj.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        out[key] = value
    return out


def _is_tensor_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def detect_config(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Official config of a state_dict (spec §2.4 step 2): ``fov_kid``, ``fov`` or ``default``."""
    shape_key = next(
        (
            k
            for k in state_dict
            if k.startswith("shape_head.0.layers.")
            and k.endswith("weight")
            and _layer_index(k) == _last_shape_layer(state_dict)
        ),
        None,
    )
    num_betas = int(state_dict[shape_key].shape[0]) if shape_key else 11
    has_fov = any(k.startswith("fov_head.") for k in state_dict)
    if not has_fov:
        return "default"
    return "fov_kid" if num_betas == 11 else "fov"


def _layer_index(key: str) -> int:
    return int(key.split(".layers.")[1].split(".")[0])


def _last_shape_layer(state_dict: Mapping) -> int:
    idx = [_layer_index(k) for k in state_dict if k.startswith("shape_head.0.layers.")]
    return max(idx) if idx else -1


def adapt_state_dict(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module
) -> tuple[dict, dict]:
    """Steps 2-5 of the module docstring: make an official state_dict fit ``model``.

    Args:
        state_dict: unwrapped, prefix-free state_dict (``unwrap``).
        model: the target ``MetricAwareHMR``.

    Returns:
        The adapted state_dict and notes ``{"ignored": [...], "expanded": [...], "aliased":
        [...]}``.
    """
    target = model.state_dict()
    sd = dict(state_dict)
    notes: dict[str, list[str]] = {"ignored": [], "expanded": [], "aliased": []}
    for key in list(sd):
        drop = key.startswith(IGNORED_PREFIXES) or key in RECOMPUTED_BUFFERS
        drop |= key.startswith("dn_enc.") and key not in target
        if drop:
            notes["ignored"].append(key)
            del sd[key]
    # Stage-2 -> stage-3: 10 -> 11 betas (append a zero output row; the kid blend starts at 0).
    for key, value in list(sd.items()):
        is_shape_out = key.startswith("shape_head.") or key == "mean_shape"
        if is_shape_out and key in target and value.shape[0] == 10 and target[key].shape[0] == 11:
            pad = value.new_zeros((1, *value.shape[1:]))
            sd[key] = torch.cat([value, pad], dim=0)
            notes["expanded"].append(key)
    for a, b in (BBOX_ALIAS, BBOX_ALIAS[::-1]):
        for key in [k for k in sd if k.startswith(a)]:
            twin = b + key[len(a) :]
            if twin not in sd and twin in target:
                sd[twin] = sd[key]
                notes["aliased"].append(twin)
    for key in ("mean_pose", "mean_shape"):
        if key in sd:
            sd[key] = sd[key].float()
    return sd, notes


def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike | Mapping[str, torch.Tensor],
    strict: bool = True,
    source: str | None = None,
) -> dict:
    """Load official weights into ``model`` (in place).

    Args:
        model: a ``MetricAwareHMR`` built with the matching config (``build_model``).
        path: checkpoint file, or an already loaded state_dict (possibly wrapped / prefixed).
        strict: raise on any missing, unexpected or mis-shaped key (recomputed buffers excepted).
        source: name used in error messages when ``path`` is an already loaded state_dict (e.g. its
            file).

    Returns:
        Report ``{"missing", "unexpected", "mismatched", "ignored", "expanded", "aliased",
        "detected_config"}``
        (lists of key names; ``mismatched`` items are "key: checkpoint shape vs model shape").

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: with ``strict``, the keys do not fit; the message lists them and names the
            config the checkpoint looks like.
    """
    if isinstance(path, Mapping):
        source = source or "state_dict"
        state_dict = unwrap(path, source)
    else:
        state_dict = read_state_dict(path)
        source = source or str(path)
    detected = detect_config(state_dict)
    sd, notes = adapt_state_dict(state_dict, model)
    target = model.state_dict()
    missing = sorted(k for k in target if k not in sd and k not in RECOMPUTED_BUFFERS)
    unexpected = sorted(k for k in sd if k not in target)
    mismatched = sorted(
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(target[k].shape)}"
        for k in sd
        if k in target and sd[k].shape != target[k].shape
    )
    report = {
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": mismatched,
        **notes,
        "detected_config": detected,
    }
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(_error_message(source, report, model))
    loadable = {k: v for k, v in sd.items() if k in target and v.shape == target[k].shape}
    with torch.no_grad():
        model.load_state_dict(loadable, strict=False)
    return report


def _error_message(source: str, report: dict, model: nn.Module) -> str:
    cfg = getattr(model, "cfg", None)
    lines = [f"[model.checkpoint] {source} does not fit the model"]
    for name in ("missing", "unexpected", "mismatched"):
        keys = report[name]
        if keys:
            shown = ", ".join(keys[:20]) + (
                f", ... ({len(keys) - 20} more)" if len(keys) > 20 else ""
            )
            lines.append(f"  {name} ({len(keys)}): {shown}")
    hint = f"  the checkpoint looks like config '{report['detected_config']}'"
    if cfg is not None:
        hint += f"; the model was built with num_betas={cfg.num_betas}, use_fov={cfg.use_fov}"
    lines.append(hint + " (build_model(<that config>) or pass strict=False to load what fits)")
    return "\n".join(lines)
