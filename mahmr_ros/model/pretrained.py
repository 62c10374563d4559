"""Starting points for training that are not MA-HMR checkpoints: the SMPL mean pose/shape and
DINOv2 weights.

* ``upright_mean_pose()``: the built-in refinement start when no ``smpl_mean_params.npz`` is given:
  every body joint at the identity, the root (global orient) at a rotation of pi about x, i.e. an
  upright person facing the camera in the OpenCV camera frame (spec mahmr_model §8 #15). The
  identity root would start every query upside down and facing away, 180 degrees from any real
  person.
* ``load_smpl_mean_params``: the official starting point (spec §2.1: ``mean_pose`` / ``mean_shape``
  come from ``smpl_mean_params.npz``). The file (HMR/SPIN layout) holds ``pose`` (144,) = 24 joints
  x rot6d in the row-major 3x2 layout of ``rotation.rot6d_to_rotmat`` (no reordering needed),
  ``shape`` (10,) and ``cam`` (3,). ``cam`` is unused: MA-HMR's camera head is not iterative (spec
  §1.7).
* ``convert_dinov2`` / ``load_dinov2``: a DINOv2 backbone checkpoint in the layout its authors
  publish (``facebookresearch/dinov2`` hub files: ``patch_embed.proj.*``, ``blocks.N.{norm1,
  attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``, ``cls_token``,
  ``pos_embed``, ``mask_token``, ``norm.*``, ``register_tokens`` in the ``_reg`` variants) to our
  encoder keys, as spec §1.4 describes the official initialisation:

  ===================================  ===========================================================
  DINOv2 key                           ours
  ===================================  ===========================================================
  ``blocks.N.*``                       ``encoder.blocks.N.*`` (same sub-keys)
  ``blocks.N.*``, N < get_map_layer    also ``encoder.additional_blocks.N.*`` (copies, spec §1.4)
  ``norm.*``                           ``encoder.norm.*``
  ``cls_token + pos_embed[:, 0]``      ``encoder_cr_token`` (1, C): CLS with its position added
  ``pos_embed[:, 1:]`` (M x M grid)    ``encoder_pos_embeds`` (F0, F0, C): bicubic resize with
                                       DINOv2's +0.1 offset (scale factor (F0 + 0.1) / M)
  ``patch_embed.proj.*``               ``encoder_patch_proj.0.*`` and ``encoder_patch_proj.1.*``
  ``mask_token``, ``register_tokens``  dropped (our encoder has neither; a ``_reg`` backbone loses
                                       its registers, which the report notes)
  ===================================  ===========================================================

  Training-time checkpoints (``teacher`` / ``student`` dicts, ``backbone.`` prefixes, chunked
  blocks ``blocks.<chunk>.<N>.*``) are unwrapped to the same layout first.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mahmr_ros.model.checkpoint import CheckpointError, unwrap

LOG = logging.getLogger(__name__)

NUM_SMPL_JOINTS = 24
#: rot6d of the identity rotation (row-major 3x2 of the first two columns).
IDENTITY_ROT6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
#: rot6d of R_x(pi) = diag(1, -1, -1): upright and facing the camera in the OpenCV camera frame.
UPRIGHT_ROOT_ROT6D = (1.0, 0.0, 0.0, -1.0, 0.0, 0.0)
#: DINOv2's position-table interpolation offset (dinov2 ``interpolate_offset``), kept for the same
#: init.
DINOV2_INTERPOLATE_OFFSET = 0.1
#: Sub-keys of a DINOv2 block, identical in our ``vit.Block``.
DINOV2_BLOCK_KEYS = (
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
    "attn.proj.weight", "attn.proj.bias", "ls1.gamma",
    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
    "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma",
)  # fmt: skip
_DINOV2_WRAPPERS = ("teacher", "student", "model", "state_dict")
_DINOV2_PREFIXES = ("module.", "backbone.", "encoder.")
_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.(.+)$")


# --------------------------------------------------------------------------------------- mean pose
def upright_mean_pose() -> Tensor:
    """(144,) float32 rot6d: root pi about x (upright, camera-facing), the 23 body joints at the
    identity."""
    pose = torch.tensor(IDENTITY_ROT6D).repeat(NUM_SMPL_JOINTS)
    pose[:6] = torch.tensor(UPRIGHT_ROOT_ROT6D)
    return pose


def read_smpl_mean_params(path: str | os.PathLike, num_betas: int = 11) -> tuple[Tensor, Tensor]:
    """``smpl_mean_params.npz`` -> (mean_pose (144,), mean_shape (num_betas,)), float32.

    Args:
        path: the HMR/SPIN ``smpl_mean_params.npz`` (``pose`` (144,) rot6d, ``shape`` (10,),
            ``cam`` (3,)).
        num_betas: 10, or 11 for the kid-aware model (the kid blend starts at 0, spec §1.7).

    Raises:
        FileNotFoundError: no such file (the message says where it comes from).
        ValueError: the file lacks ``pose`` / ``shape`` or has other shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"[model.pretrained] SMPL mean parameters not found: {path} (smpl_mean_params.npz "
            "ships with the SPIN / HMR data downloads; or leave the path empty to start from the "
            "built-in upright pose)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"[model.pretrained] {path}: not a readable .npz ({err})") from err
    missing = [k for k in ("pose", "shape") if k not in arrays]
    if missing:
        raise ValueError(f"[model.pretrained] {path}: lacks {missing} (found {sorted(arrays)})")
    pose = arrays["pose"].reshape(-1).astype(np.float32)
    shape = arrays["shape"].reshape(-1).astype(np.float32)
    if pose.shape != (NUM_SMPL_JOINTS * 6,) or shape.shape[0] < 10 or not np.isfinite(pose).all():
        raise ValueError(
            f"[model.pretrained] {path}: expected pose (144,) = 24 joints x rot6d and shape "
            f"(10,), got pose {arrays['pose'].shape}, shape {arrays['shape'].shape}"
        )
    if num_betas not in (10, 11):
        raise ValueError(f"[model.pretrained] num_betas must be 10 or 11, got {num_betas}")
    betas = np.zeros(num_betas, np.float32)
    betas[:10] = shape[:10]
    return torch.from_numpy(pose), torch.from_numpy(betas)


def load_smpl_mean_params(model: nn.Module, path: str | os.PathLike) -> None:
    """Set ``model.mean_pose`` / ``model.mean_shape`` (in place) from ``smpl_mean_params.npz``."""
    pose, betas = read_smpl_mean_params(path, model.mean_shape.shape[0])
    with torch.no_grad():
        model.mean_pose.copy_(pose)
        model.mean_shape.copy_(betas)


# ------------------------------------------------------------------------------------------ DINOv2
def _dinov2_state_dict(source: str | os.PathLike | Mapping) -> dict[str, Tensor]:
    """Read / unwrap a DINOv2 checkpoint and bring it to the flat hub layout."""
    if isinstance(source, Mapping):
        obj: object = source
        name = "state_dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"[model.pretrained] DINOv2 weights not found: {path} (e.g. "
                "dinov2_vitb14_pretrain.pth from the facebookresearch/dinov2 README; this "
                "package downloads nothing)"
            )
        name = str(path)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(name, device="cpu")
        else:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - re-raised with the path
                raise CheckpointError(
                    f"[model.pretrained] cannot read {path} as a torch file: {err}"
                ) from err
    while isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _DINOV2_WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise CheckpointError(
                f"[model.pretrained] {name}: no DINOv2 state_dict inside (keys {list(obj)[:8]})"
            )
        obj = inner
    sd = unwrap(obj, name)
    out = {}
    for key, value in sd.items():
        for prefix in _DINOV2_PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :].split(".")[0] in (
                "blocks", "cls_token", "pos_embed", "patch_embed", "norm", "mask_token",
                "register_tokens",
            ):  # fmt: skip
                key = key[len(prefix) :]
        chunked = _CHUNKED_BLOCK.match(key)
        if chunked:  # dinov2 BlockChunk: the inner index is the global block index
            key = f"blocks.{chunked.group(1)}.{chunked.group(2)}"
        out[key] = value
    return out


def resize_pos_table(
    pos_grid: Tensor, size: int, offset: float = DINOV2_INTERPOLATE_OFFSET
) -> Tensor:
    """DINOv2's position-table resize: bicubic, scale factor (size + offset) / M, no antialias.

    Args:
        pos_grid: (M, M, C) patch position table.
        size: output grid side F0.
        offset: DINOv2's ``interpolate_offset`` (0.1): the sampling follows the scale factor, not
            the size.

    Returns:
        (size, size, C) float32.
    """
    M = pos_grid.shape[0]
    table = pos_grid.float().permute(2, 0, 1)[None]  # (1, C, M, M)
    scale = (size + offset) / M
    out = F.interpolate(
        table, scale_factor=(scale, scale), mode="bicubic", align_corners=False, antialias=False
    )
    if out.shape[-2:] != (size, size):  # cannot happen for offset in [0, 1); guards odd offsets
        raise ValueError(
            f"[model.pretrained] position table resize gave {tuple(out.shape[-2:])}, not {size}"
        )
    return out[0].permute(1, 2, 0).contiguous()


def convert_dinov2(
    source: str | os.PathLike | Mapping, depth: int, num_additional: int, grid_lvl0: int
) -> tuple[dict[str, Tensor], dict[str, list[str]]]:
    """A DINOv2 checkpoint as our encoder-side state_dict (table in the module docstring).

    Args:
        source: checkpoint file (``.pth`` / ``.safetensors``) or state_dict.
        depth: our main blocks (``ModelConfig.depth``); the checkpoint must have exactly as many.
        num_additional: our scale-map blocks (``get_map_layer``), copied from blocks
            ``0..num_additional-1``.
        grid_lvl0: side F0 of ``encoder_pos_embeds`` (92 at 1288).

    Returns:
        (state_dict in our keys, report {"ignored": [...], "notes": [...]}).

    Raises:
        CheckpointError: not a DINOv2 ViT of this depth / kind (the message names what is missing
            or odd).
    """
    sd = _dinov2_state_dict(source)
    if any(".mlp.w12." in k for k in sd):
        raise CheckpointError(
            "[model.pretrained] this DINOv2 checkpoint uses SwiGLU MLPs (ViT-g); only ViT-S/B/L "
            "are supported"
        )
    block_ids = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")})
    stem = [
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "norm.weight",
    ]
    required = [*stem, "norm.bias"] + [
        f"blocks.{n}.{s}" for n in range(depth) for s in DINOV2_BLOCK_KEYS
    ]
    missing = [k for k in required if k not in sd]
    if missing or len(block_ids) != depth:
        raise CheckpointError(
            f"[model.pretrained] not a {depth}-block DINOv2 ViT: found {len(block_ids)} blocks, "
            f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''} (ViT-S/B have 12 blocks, "
            "ViT-L 24: pick the model.encoder size that matches the file)"
        )
    out: dict[str, Tensor] = {}
    for n in range(depth):
        for sub in DINOV2_BLOCK_KEYS:
            out[f"encoder.blocks.{n}.{sub}"] = sd[f"blocks.{n}.{sub}"].float().clone()
    for n in range(
        num_additional
    ):  # the scale-map blocks start as copies of the first blocks (spec §1.4)
        for sub in DINOV2_BLOCK_KEYS:
            out[f"encoder.additional_blocks.{n}.{sub}"] = sd[f"blocks.{n}.{sub}"].float().clone()
    for sub in ("weight", "bias"):
        out[f"encoder.norm.{sub}"] = sd[f"norm.{sub}"].float().clone()
        for level in (0, 1):
            out[f"encoder_patch_proj.{level}.{sub}"] = (
                sd[f"patch_embed.proj.{sub}"].float().clone()
            )
    pos = sd["pos_embed"].float().reshape(-1, sd["pos_embed"].shape[-1])  # (1 + M*M, C)
    M = math.isqrt(pos.shape[0] - 1)
    if M * M != pos.shape[0] - 1:
        raise CheckpointError(
            f"[model.pretrained] pos_embed has {pos.shape[0] - 1} patch entries, not a square"
        )
    C = pos.shape[1]
    out["encoder_cr_token"] = (sd["cls_token"].float().reshape(1, C) + pos[:1]).clone()
    out["encoder_pos_embeds"] = resize_pos_table(pos[1:].reshape(M, M, C), grid_lvl0)
    used = {f"blocks.{n}.{s}" for n in range(depth) for s in DINOV2_BLOCK_KEYS} | set(required)
    report: dict[str, list[str]] = {"ignored": sorted(k for k in sd if k not in used), "notes": []}
    if "register_tokens" in sd:
        report["notes"].append(
            f"register_tokens {tuple(sd['register_tokens'].shape)} dropped: the encoder has no "
            "registers, so a _reg backbone runs without the tokens it was trained with (the "
            "official init is dinov2_vitb14)"
        )
    return out, report


def load_dinov2(model: nn.Module, source: str | os.PathLike | Mapping) -> dict[str, list[str]]:
    """Initialise the encoder side of ``model`` (in place) from a DINOv2 checkpoint.

    Every encoder parameter (``encoder.*``, ``encoder_cr_token``, ``encoder_pos_embeds``,
    ``encoder_patch_proj.*``) is set; the SAT heads, decoder and prediction heads keep their fresh
    weights.

    Returns:
        Report {"loaded": [...], "ignored": [...], "notes": [...]} (key names).

    Raises:
        CheckpointError: the checkpoint does not fit the model's encoder (width or depth); the
            message lists the offending keys.
    """
    cfg = model.cfg
    sd, report = convert_dinov2(source, cfg.depth, cfg.get_map_layer, cfg.grid_lvl0)
    target = model.state_dict()
    mismatched = [f"{k}: {tuple(v.shape)} vs model {tuple(target[k].shape)}" for k, v in sd.items()
                  if k in target and v.shape != target[k].shape]  # fmt: skip
    unknown = [k for k in sd if k not in target]
    if mismatched or unknown:
        raise CheckpointError(
            f"[model.pretrained] DINOv2 weights do not fit the encoder ({cfg.encoder}, embed_dim "
            f"{cfg.embed_dim}): mismatched {mismatched[:6]}, unknown {unknown[:6]}"
        )
    with torch.no_grad():
        model.load_state_dict(sd, strict=False)
    for note in report["notes"]:
        LOG.warning("[model.pretrained] %s", note)
    return {"loaded": sorted(sd), **report}
