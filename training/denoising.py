"""Denoising (DN) queries of stage-1 / SAT-HMR training (spec mahmr_model §4.4).

Matching queries learn slowly because the Hungarian assignment flips between epochs. Denoising adds
extra decoder queries that start from noisy copies of the GT people and must reconstruct them:
their target is known without matching, which stabilises and speeds up the early training (DN-DETR
idea). They exist only in training; inference never sees them.

Layout of the ``Q_dn = groups x 2 x pad`` DN queries, prepended to the ``Q`` matching queries
(``pad`` = the largest GT count in the batch, slot k of an image = its GT k; slots k >= G_b are
padding):

    [ group 0: positives (pad) | negatives (pad) ] ... [ group groups-1: pos | neg ]
    [ matching queries (Q) ]

* Box noise (``box_noise`` = 0.4): every corner of the GT box (x1, y1, x2, y2) moves by ``sign *
  u * (w/2, h/2) * box_noise`` with u ~ U[0, 1) for positives and U[1, 2) for negatives (each
  negative corner is farther from the GT than any positive one), clamped to [0, 1]; the decoder
  input anchor is its logit.
* Content noise (``content_noise`` = 0.2): the GT [theta (72 axis-angle), beta (10)] gets ``sign *
  u * content_noise`` (same u ranges), then the network's ``dn_enc`` (Linear 82 -> D) makes the
  content query.
* Self-attention mask: the matching queries cannot see any DN query (they must behave exactly as at
  inference) and the DN groups cannot see each other (each group is an independent noisy copy of
  the GT); DN queries see the matching queries and their own group.

Choices where the spec is silent (documented in ``training/README.md``): the padding slots carry a
zero content query and the whole-canvas anchor box (0.5, 0.5, 1, 1), so that no degenerate box (w
or h -> 0) blows up the anchor-scaled sine query; the content noise is applied to the dataset's
SMPL parameters also for 2D-only (``has_3d`` False) people, whose pose / shape losses are masked
anyway; the noise comes from a generator seeded by (seed, step, rank), so that resuming and
re-running are deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mahmr_ros.geometry import box_cxcywh_to_xyxy
from mahmr_ros.model.decoder import inverse_sigmoid

#: Width of the ``dn_enc`` input: 24 joints x 3 axis-angle + 10 SMPL betas (the kid beta is not
#: encoded).
DN_POSE_DIM = 72
DN_SHAPE_DIM = 10
#: Anchor of the padding slots: the whole canvas (cx, cy, w, h), see the module docstring.
PAD_BOX = (0.5, 0.5, 1.0, 1.0)


@dataclass(frozen=True)
class DNConfig:
    """The ``dn`` section of a training config (official ``dn_cfg`` values as defaults).

    Attributes:
        groups: number of DN groups (``dn_number``), each a positive and a negative copy of every
            GT.
        box_noise: box noise scale, fraction of the half width / height moved per corner.
        content_noise: noise scale of the [theta, beta] content parameters.
    """

    groups: int = 10
    box_noise: float = 0.4
    content_noise: float = 0.2

    @classmethod
    def from_config(cls, section: Mapping | None) -> DNConfig | None:
        """``None`` (DN off) for a missing section, ``enabled: false`` or ``groups: 0``; else the
        config.

        Raises:
            ValueError: unknown keys or values that cannot work (names the key).
        """
        if section is None:
            return None
        if not isinstance(section, Mapping):
            raise ValueError(
                f"[training.denoising] the dn section must be a mapping, got {section!r}"
            )
        values = dict(section)
        if not values.pop("enabled", True):
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"[training.denoising] unknown dn key(s) {unknown} (known: enabled, "
                f"{sorted(known)})"
            )
        cfg = cls(**values)
        if int(cfg.groups) != cfg.groups or cfg.groups < 0:
            raise ValueError(
                f"[training.denoising] dn.groups must be an integer >= 0, got {cfg.groups!r}"
            )
        if cfg.box_noise < 0 or cfg.content_noise < 0:
            raise ValueError(
                f"[training.denoising] dn.box_noise / dn.content_noise must be >= 0, got "
                f"{cfg.box_noise} / {cfg.content_noise}"
            )
        return cfg if cfg.groups > 0 else None


@dataclass
class DNQueries:
    """DN decoder inputs of one batch.

    Attributes:
        content: (B, Q_dn, D) content queries (``dn_enc`` output, zeros in padding slots).
        anchors: (B, Q_dn, 4) anchor logits (cx, cy, w, h).
        attn_mask: (Q_dn + Q, Q_dn + Q) bool, True = row query may attend to column query.
        groups: DN groups.
        pad: slots per positive (and per negative) block = the batch's largest GT count.
        counts: GT people per image.
    """

    content: Tensor
    anchors: Tensor
    attn_mask: Tensor
    groups: int
    pad: int
    counts: list[int]

    @property
    def num_queries(self) -> int:
        return self.groups * 2 * self.pad


def dn_attention_mask(groups: int, pad: int, num_queries: int, device=None) -> Tensor:
    """Self-attention mask for ``groups`` DN groups of ``2 pad`` queries before ``num_queries``
    matching ones.

    Returns:
        (Q_dn + Q, Q_dn + Q) bool, True = allowed. Matching rows see only matching columns; a DN
        row sees its own group and the matching columns.
    """
    size = 2 * pad
    n_dn = groups * size
    total = n_dn + num_queries
    group_of = torch.arange(total, device=device) // size  # matching queries get ids >= groups
    is_dn = torch.arange(total, device=device) < n_dn
    same_group = group_of[:, None] == group_of[None, :]
    sees_matching = ~is_dn[None, :]  # every query may look at the matching queries
    return (is_dn[:, None] & same_group) | sees_matching


def _signed_noise(shape, negative: bool, generator: torch.Generator) -> Tensor:
    """sign * u with sign = +-1 and u ~ U[0, 1) (positives) or U[1, 2) (negatives); on the CPU."""
    u = torch.rand(shape, generator=generator) + (1.0 if negative else 0.0)
    sign = torch.randint(0, 2, shape, generator=generator).float() * 2 - 1
    return sign * u


def noisy_boxes(boxes: Tensor, noise: Tensor, scale: float) -> Tensor:
    """Jitter the corners of (G, 4) (cx, cy, w, h) boxes by ``noise`` (G, 4) x (w/2, h/2) x
    ``scale``.

    Returns:
        (G, 4) (cx, cy, w, h), corners clamped to [0, 1].
    """
    half = torch.cat([boxes[:, 2:], boxes[:, 2:]], -1) / 2  # (w/2, h/2, w/2, h/2)
    xyxy = (box_cxcywh_to_xyxy(boxes) + noise * half * scale).clamp(0.0, 1.0)
    return torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], -1)


def build_dn_queries(
    dn_enc: nn.Module,
    targets: list[dict],
    cfg: DNConfig,
    num_queries: int,
    generator: torch.Generator,
) -> DNQueries | None:
    """Noisy positive / negative copies of every GT person, in ``cfg.groups`` groups (spec §4.4).

    Args:
        dn_enc: the network's ``dn_enc`` (Linear 82 -> D).
        targets: per image dicts with ``boxes`` (G, 4) (cx, cy, w, h) / input_size, ``poses``
            (G, 72) axis-angle and ``betas`` (G, >= 10), on the training device.
        cfg: group count and noise scales.
        num_queries: Q matching queries (for the attention mask).
        generator: CPU generator of the noise (seeded per step by the caller).

    Returns:
        The DN queries, or None when the batch holds no GT person at all.
    """
    counts = [len(t["boxes"]) for t in targets]
    pad = max(counts, default=0)
    if pad == 0:
        return None
    device = targets[0]["boxes"].device
    B, G, D = len(targets), cfg.groups, dn_enc.out_features
    params_all, boxes_all, slots = [], [], []
    for b, (t, n) in enumerate(zip(targets, counts, strict=True)):
        if n == 0:
            continue
        box = t["boxes"].float().cpu()
        params = torch.cat(
            [t["poses"].float().cpu(), t["betas"].float().cpu()[:, :DN_SHAPE_DIM]], -1
        )
        if params.shape[-1] != DN_POSE_DIM + DN_SHAPE_DIM:
            raise ValueError(
                f"[training.denoising] image {b}: DN needs poses (G, {DN_POSE_DIM}) and betas (G, "
                f">= {DN_SHAPE_DIM}), got {tuple(t['poses'].shape)} and {tuple(t['betas'].shape)}"
            )
        for g in range(G):
            for negative in (False, True):
                boxes_all.append(
                    noisy_boxes(box, _signed_noise((n, 4), negative, generator), cfg.box_noise)
                )
                params_all.append(
                    params + _signed_noise(params.shape, negative, generator) * cfg.content_noise
                )
                start = g * 2 * pad + int(negative) * pad
                slots.append(b * G * 2 * pad + start + torch.arange(n))  # flat (image, slot) index
    flat = torch.cat(slots).to(device)
    anchors = torch.tensor(PAD_BOX).repeat(B * G * 2 * pad, 1)
    anchors[flat.cpu()] = torch.cat(boxes_all)
    encoded = dn_enc(torch.cat(params_all).to(device, dn_enc.weight.dtype))
    content = encoded.new_zeros(B * G * 2 * pad, D).index_copy(0, flat, encoded)
    return DNQueries(
        content=content.reshape(B, G * 2 * pad, D),
        anchors=inverse_sigmoid(anchors.to(device)).reshape(B, G * 2 * pad, 4),
        attn_mask=dn_attention_mask(G, pad, num_queries, device),
        groups=G,
        pad=pad,
        counts=counts,
    )


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """CPU generator for the DN noise of one optimisation step (deterministic under resume and
    DDP)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
