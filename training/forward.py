"""Training forward pass: the network's own SAT encoder and decoder, every decoder layer decoded.

``MetricAwareHMR.forward`` returns only the last decoder layer (inference contract, api.md §1).
Training needs the per-layer predictions for the auxiliary losses (spec §4.2), the scale map for
SAT supervision and the camera for the FoV loss. This module therefore calls the SAME pieces as
``forward`` — ``model.encode`` (``sat.encode``, the one SAT orchestration, batched with padding
masks), ``model.decoder``, ``model.camera`` and ``model.decode_layers(all_layers=True)`` — and adds
nothing to the network, so checkpoints keep the official key layout. In stage 1 the denoising
queries (``training.denoising``) run through the same decoder, masked from the matching queries,
and are decoded by the same heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mahmr_ros.geometry import rotmat_to_axis_angle
from training.denoising import DNQueries


def forward_train(
    model: nn.Module, images: Tensor, resized_hw: Tensor, dn: DNQueries | None = None
) -> dict:
    """Run the network and return the predictions of every decoder layer.

    Args:
        model: a ``MetricAwareHMR`` (unwrapped from DDP).
        images: (B, 3, Hp, Wp) normalised network input.
        resized_hw: (B, 2) (h', w') resized unpadded sizes, pixels.
        dn: denoising queries (``training.denoising.build_dn_queries``), prepended to the matching
            queries behind their attention mask; None = matching queries only (the inference
            decoder).

    Returns:
        dict with ``layers``: list over decoder layers (last = final prediction) of dicts
        ``pred_confs`` (B, Q) probabilities, ``pred_boxes`` (B, Q, 4) (cx, cy, w, h) / input_size,
        ``pred_rotmats`` (B, Q, 24, 3, 3), ``pred_poses`` (B, Q, 72) axis-angle, ``pred_betas`` (B,
        Q, S), ``pred_cam`` (B, Q, 3), ``pred_transl`` (B, Q, 3) m; plus ``scale_map`` (B, G1h,
        G1w, 2) sigmoid, ``pred_focal`` (B,) resized px, ``pred_fov`` (B,) rad or None,
        ``pred_intrinsics`` (B, 3, 3) resized px, ``sat`` (the network's ``sat`` outputs); with
        ``dn`` also ``dn`` = {``layers``: per decoder layer the same ``pred_*`` dict over the Q_dn
        DN queries, ``groups``, ``pad``, ``counts``} (slot layout in ``training.denoising``).
    """
    B = images.shape[0]
    enc = model.encode(images)
    tgt = model.tgt_embed.weight[None].expand(B, -1, -1)
    refpoints = model.refpoint_embed.weight[None].expand(B, -1, -1)
    n_dn, attn_mask = 0, None
    if dn is not None:
        n_dn, attn_mask = dn.num_queries, dn.attn_mask
        tgt = torch.cat([dn.content.to(tgt.dtype), tgt], dim=1)
        refpoints = torch.cat([dn.anchors.to(refpoints.dtype), refpoints], dim=1)
    hs, boxes = model.decoder(
        tgt, refpoints, enc.memory, enc.memory_pos, enc.memory_mask, attn_mask
    )
    camera = model.camera(enc.cls_out, resized_hw)
    focal = camera["pred_focal"]

    def decode(queries: slice) -> list[dict]:
        layers = model.decode_layers(
            [h[:, queries] for h in hs], [b[:, queries] for b in boxes], focal, True
        )
        for layer in layers:
            layer["pred_poses"] = _axis_angle(layer["pred_rotmats"])
        return layers

    out = {
        "layers": decode(slice(n_dn, None)),
        "scale_map": enc.scale_map,
        "pred_focal": focal,
        "pred_fov": camera.get("pred_fov"),
        "pred_intrinsics": camera["pred_intrinsics"],
        "sat": enc.outputs(),
    }
    if dn is not None:
        dn_layers = decode(slice(0, n_dn))
        out["dn"] = {"layers": dn_layers, "groups": dn.groups, "pad": dn.pad, "counts": dn.counts}
    return out


def _axis_angle(rotmats: Tensor) -> Tensor:
    """(B, Q, 24, 3, 3) -> (B, Q, 72) axis-angle in float32 (the official pose loss compares
    axis-angle)."""
    B, Q = rotmats.shape[:2]
    with torch.autocast(rotmats.device.type, enabled=False):
        return rotmat_to_axis_angle(rotmats.float()).reshape(B, Q, 72)
