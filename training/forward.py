"""Training forward pass: the network's stages plus every decoder layer's predictions (aux outputs).

``MetricAwareHMR.forward`` returns only the last decoder layer (inference contract, api.md §1). Training
needs the per-layer predictions for the auxiliary losses (spec §4.2), the scale map for SAT supervision and
the camera for the FoV loss, so this module drives the SAME modules stage by stage (read-only use of the
network: no parameter is added or renamed, so checkpoints keep the official key layout) and decodes each
layer l with the iterative heads: P6_l = P6_{l-1} + pose_head[l](h_l),
beta_l = beta_{l-1} + shape_head[l](h_l), conf and camera from h_l alone (spec §1.7). In stage 1 the
denoising queries (``training.denoising``) run through the same decoder, masked from the matching queries,
and are decoded by the same heads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mahmr_ros.model import sat
from mahmr_ros.model.heads import DEFAULT_FOV_RAD, camera_to_translation, clamp_fov, focal_from_fov
from mahmr_ros.model.rotation import rot6d_to_rotmat, rotmat_to_axis_angle
from training.denoising import DNQueries


def forward_train(model: nn.Module, images: Tensor, resized_hw: Tensor, dn: DNQueries | None = None) -> dict:
    """Run the network and return the predictions of every decoder layer.

    Args:
        model: a ``MetricAwareHMR`` (unwrapped from DDP).
        images: (B, 3, Hp, Wp) normalised network input.
        resized_hw: (B, 2) (h', w') resized unpadded sizes, pixels.
        dn: denoising queries (``training.denoising.build_dn_queries``), prepended to the matching queries
            behind their attention mask; None = matching queries only (the inference decoder).

    Returns:
        dict with ``layers``: list over decoder layers (last = final prediction) of dicts
        ``pred_confs`` (B, Q) probabilities, ``pred_boxes`` (B, Q, 4) (cx, cy, w, h) / input_size,
        ``pred_rotmats`` (B, Q, 24, 3, 3), ``pred_poses`` (B, Q, 72) axis-angle, ``pred_betas`` (B, Q, S),
        ``pred_transl`` (B, Q, 3) m; plus ``scale_map`` (B, G1h, G1w, 2) sigmoid, ``pred_focal`` (B,)
        resized px, ``pred_fov`` (B,) rad or None, ``pred_intrinsics`` (B, 3, 3) resized px; with ``dn``
        also ``dn`` = {``layers``: per decoder layer the same ``pred_*`` dict over the Q_dn DN queries,
        ``groups``, ``pad``, ``counts``} (slot layout in ``training.denoising``).
    """
    cfg = model.cfg
    B = images.shape[0]
    cls1, lvl1, scale_map = model.forward_scale_map(images)
    with torch.no_grad():  # token selection is a hard, non-differentiable decision (spec §1.5)
        masks = sat.select_cells(scale_map, cfg.conf_thresh, cfg.scale_thresh, cfg.sat_official_quirk)
    feats, cls_out, pos = [], [], []
    for b in range(B):
        plan = sat.plan_tokens(masks.hr_cells[b], masks.pooled_groups[b], masks.keep_lvl1[b])
        f, c, levels, yx = model.forward_tokens(images[b], cls1[b], lvl1[b], plan)
        feats.append(model.feature_proj(f))
        cls_out.append(c)
        pos.append(model.memory_pos(levels, yx))
    lengths = torch.tensor([len(f) for f in feats], device=images.device)
    memory = nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, Nmax, D)
    memory_pos = nn.utils.rnn.pad_sequence(pos, batch_first=True)
    memory_mask = None
    if int(lengths.min()) != int(lengths.max()):
        valid = torch.arange(memory.shape[1], device=images.device)[None] < lengths[:, None]
        memory_mask = valid[:, None, None, :]
    tgt = model.tgt_embed.weight[None].expand(B, -1, -1)
    refpoints = model.refpoint_embed.weight[None].expand(B, -1, -1)
    n_dn, attn_mask = 0, None
    if dn is not None:
        n_dn, attn_mask = dn.num_queries, dn.attn_mask
        tgt = torch.cat([dn.content.to(tgt.dtype), tgt], dim=1)
        refpoints = torch.cat([dn.anchors.to(refpoints.dtype), refpoints], dim=1)
    hs, boxes = model.decoder(tgt, refpoints, memory, memory_pos, memory_mask, attn_mask)

    hw = resized_hw.to(images.device, torch.float32)
    fov = None
    if cfg.use_fov:
        fov = clamp_fov(model.fov_head(torch.stack(cls_out))[:, 0])
        focal = focal_from_fov(fov, hw[:, 0])
    else:
        # Fixed 60 degree camera on the input_size canvas (stage 1 / SAT-HMR, spec §1.8).
        focal = images.new_full((B,), cfg.input_size / (2 * math.tan(DEFAULT_FOV_RAD / 2)))
    K = torch.zeros(B, 3, 3, device=images.device)
    K[:, 0, 0] = K[:, 1, 1] = focal
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = hw[:, 1] / 2, hw[:, 0] / 2, 1.0

    layers = _decode_layers(model, [h[:, n_dn:] for h in hs], [b[:, n_dn:] for b in boxes], focal)
    out = {
        "layers": layers,
        "scale_map": scale_map,
        "pred_focal": focal,
        "pred_fov": fov,
        "pred_intrinsics": K,
    }
    if dn is not None:
        dn_layers = _decode_layers(model, [h[:, :n_dn] for h in hs], [b[:, :n_dn] for b in boxes], focal)
        out["dn"] = {"layers": dn_layers, "groups": dn.groups, "pad": dn.pad, "counts": dn.counts}
    return out


def _decode_layers(model: nn.Module, hs: list[Tensor], boxes: list[Tensor], focal: Tensor) -> list[dict]:
    """Iterative heads over the decoder layers for one query set (spec §1.7).

    Args:
        hs: per layer (B, Q, D) decoder outputs h_l.  boxes: per layer (B, Q, 4).  focal: (B,) px.

    Returns:
        Per layer the ``pred_*`` dict documented in ``forward_train``.
    """
    B, Q = hs[0].shape[:2]
    device_type = hs[0].device.type
    pose_6d = model.mean_pose.float().expand(B, Q, -1)
    betas = model.mean_shape.float().expand(B, Q, -1)
    layers = []
    for idx, h in enumerate(hs):
        pose_6d = pose_6d + model.pose_head[idx](h).float()
        betas = betas + model.shape_head[idx](h).float()
        cam = model.cam_head(h).float()
        # Rotations and camera geometry in fp32 even under autocast (bf16 Gram-Schmidt is too coarse).
        with torch.autocast(device_type, enabled=False):
            rotmats = rot6d_to_rotmat(pose_6d.reshape(B, Q, 24, 6))
            _, transl = camera_to_translation(cam, focal.float(), model.cfg.input_size)
        layers.append(
            {
                "pred_confs": torch.sigmoid(model.conf_head(h))[..., 0],
                "pred_boxes": boxes[idx],
                "pred_rotmats": rotmats,
                "pred_poses": _axis_angle(rotmats, device_type).reshape(B, Q, 72),
                "pred_betas": betas,
                "pred_transl": transl,
            }
        )
    return layers


def _axis_angle(rotmats: Tensor, device_type: str) -> Tensor:
    """(B, Q, 24, 3, 3) -> (B*Q*24, 3) axis-angle, computed in fp32."""
    with torch.autocast(device_type, enabled=False):
        return rotmat_to_axis_angle(rotmats.reshape(-1, 3, 3).float())
