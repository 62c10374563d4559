"""Losses of the denoising (DN) queries (spec mahmr_model §4.4).

A DN query needs no Hungarian matching: positive slot k of every group reconstructs GT k of its
image (layout in ``training.denoising``). Every per-layer loss of ``SetCriterion`` except the scale
map (and the per-image FoV, which does not depend on queries) is computed on the positive DN
queries with the same weights, under the keys ``<name>_dn`` (last layer) and ``<name>_dn.<l>``
(auxiliary layers):

* L1-type terms are summed over the positive DN queries of real GT people and divided by N x
  groups, N the (all-reduced) GT count that carries the term's key. To reuse
  ``SetCriterion.layer_losses`` unchanged, each (image, group) becomes a pseudo-image holding that
  group's positives, with the image's targets; the normalisers it computes from the repeated
  targets are then exactly N x groups, and the relative metric depth pairs stay inside one group.
* ``confs_dn``: focal BCE with target 1 on the positive slots of real GT people and 0 on every
  other DN slot (negatives and padding), an unmasked mean over all DN slots, divided by the group
  count.
"""

from __future__ import annotations

import torch
from torch import Tensor

from training.losses.criterion import SetCriterion, focal_bce

DN_SUFFIX = "_dn"


def weight_name(key: str) -> str:
    """Loss key -> the ``loss_weights`` entry it uses: ``j2ds_dn.3`` -> ``j2ds``, ``confs.1`` ->
    ``confs``."""
    return key.split(".")[0].removesuffix(DN_SUFFIX)


def positive_queries(layer: dict, groups: int, pad: int) -> dict:
    """One DN layer's predictions (B, groups x 2 x pad, ...) -> the positives as pseudo-images
    (B x groups, pad, ...), image-major."""
    out = {}
    for key, value in layer.items():
        B, rest = value.shape[0], value.shape[2:]
        out[key] = value.reshape(B, groups, 2, pad, *rest)[:, :, 0].reshape(B * groups, pad, *rest)
    return out


def loss_confs_dn(confs: Tensor, counts: list[int], groups: int, pad: int) -> Tensor:
    """(B, groups x 2 x pad) DN probabilities -> focal BCE mean over all DN slots / groups."""
    target = torch.zeros_like(confs).reshape(len(counts), groups, 2, pad)
    for b, n in enumerate(counts):
        target[b, :, 0, :n] = 1.0
    return focal_bce(confs, target.reshape_as(confs)).mean() / groups


def dn_losses(
    criterion: SetCriterion, outputs: dict, targets: list[dict]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted DN loss and every unweighted DN term (keys ``name_dn`` / ``name_dn.l``).

    Args:
        criterion: the stage's ``SetCriterion`` (weights, body model, per-layer terms).
        outputs: ``training.forward.forward_train`` output; without ``dn`` the result is (0, {}).
        targets: per-image target dicts (``training.losses.criterion`` module docstring).
    """
    dn = outputs.get("dn")
    if dn is None:
        return outputs["pred_focal"].sum() * 0.0, {}
    groups, pad, counts = dn["groups"], dn["pad"], dn["counts"]
    K = outputs["pred_intrinsics"].repeat_interleave(groups, 0)
    focal = outputs["pred_focal"].repeat_interleave(groups, 0)
    pseudo_targets = [t for t in targets for _ in range(groups)]
    indices = [(torch.arange(n), torch.arange(n)) for n in counts for _ in range(groups)]
    terms: dict[str, Tensor] = {}
    num_layers = len(dn["layers"])
    for idx, layer in enumerate(dn["layers"]):
        if idx < num_layers - 1 and not criterion.aux:
            continue
        suffix = "" if idx == num_layers - 1 else f".{idx}"
        positives = positive_queries(layer, groups, pad)
        j3d, j2d = criterion.decode(positives, K)
        losses = criterion.layer_losses(positives, j3d, j2d, indices, pseudo_targets, focal)
        if (
            "confs" in losses
        ):  # the matching version is replaced by the DN one (negatives and padding = 0)
            losses["confs"] = loss_confs_dn(layer["pred_confs"], counts, groups, pad)
        for name, value in losses.items():
            terms[name + DN_SUFFIX + suffix] = value
    total = sum(float(criterion.weights.get(weight_name(k), 0.0)) * v for k, v in terms.items())
    return total, terms
