"""DAB-DETR / Conditional-DETR style decoder with iterative anchor-box refinement (spec §1.6).

Attribute names reproduce the official keys below ``decoder.decoder.``
(``layers.N.sa_qcontent_proj``, ``ref_point_head``, ``query_scale``, ``ref_anchor_head``,
``bbox_embed``, ``norm``).

Data flow per layer l (content q (B, Q, D), reference box r = (cx, cy, w, h) in (0, 1)):

    r ──sine──► Sfull (B,Q,2D) ──ref_point_head──► query_pos
                 └─[:D] ⊙ query_scale(q) (l > 0) ⊙ (w_ref/w, h_ref/h) ──► s
                   (sine query for cross-attn)
    q ──self-attn(q+pos)──► ──cross-attn([q;s] · [mem;pos])──►
      ──FFN──► norm ──► h_l ──bbox_embed[l]──► r
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mahmr_ros.model.heads import MLP

# Temperature of the sine position encoding: 20, not the usual 10000 (spec §1.6, §8 #5).
SINE_TEMPERATURE = 20.0


def sine_embed(coord: Tensor, num_feats: int, temperature: float = SINE_TEMPERATURE) -> Tensor:
    """Sine encoding of normalised coordinates.

    For k = 0..num_feats-1: e_k = 2 pi c / T^(2 floor(k/2) / num_feats); output sin(e_k) for even
    k, cos(e_k) for odd k.

    Args:
        coord: (...,) float in [0, 1].
        num_feats: output width (D/2 = 384 for the released model).
        temperature: T.

    Returns:
        (..., num_feats) float32.
    """
    k = torch.arange(num_feats, dtype=torch.float32, device=coord.device)
    omega = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / num_feats)
    e = coord[..., None] * (2 * math.pi) / omega
    return torch.where(k % 2 == 0, torch.sin(e), torch.cos(e))


def sine_embed_2d(x: Tensor, y: Tensor, num_feats: int) -> Tensor:
    """PE2D(x, y) = [PE(y), PE(x)], y first; (...,) -> (..., 2 num_feats)."""
    return torch.cat([sine_embed(y, num_feats), sine_embed(x, num_feats)], dim=-1)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """logit with the official clamps: log(max(x, eps) / max(1 - x, eps)), x clamped to [0, 1]."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class DecoderLayer(nn.Module):
    """One pre-norm decoder layer (self-attn, conditional cross-attn, FFN; LayerNorm eps 1e-5).

    Args:
        d_model: width D.
        nheads: attention heads; cross-attention heads are 2 D / nheads wide (content ‖ sine).
        dim_feedforward: FFN width.
        is_first: layer 0 also has ``ca_qpos_proj`` and adds the key position to the content keys.
    """

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, is_first: bool):
        super().__init__()
        self.nheads = nheads
        self.is_first = is_first
        for name in (
            "sa_qcontent_proj",
            "sa_qpos_proj",
            "sa_kcontent_proj",
            "sa_kpos_proj",
            "sa_v_proj",
            "sa_out_proj",
        ):
            setattr(self, name, nn.Linear(d_model, d_model))
        self.norm1 = nn.LayerNorm(d_model)
        self.ca_qcontent_proj = nn.Linear(d_model, d_model)
        if is_first:
            self.ca_qpos_proj = nn.Linear(d_model, d_model)
        for name in (
            "ca_kcontent_proj",
            "ca_kpos_proj",
            "ca_v_proj",
            "ca_qpos_sine_proj",
            "ca_out_proj",
        ):
            setattr(self, name, nn.Linear(d_model, d_model))
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def _heads(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        return x.reshape(B, N, self.nheads, D // self.nheads).transpose(
            1, 2
        )  # (B, heads, N, D/heads)

    def forward(
        self,
        q: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        query_pos: Tensor,
        query_sine: Tensor,
        memory_mask: Tensor | None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """One layer.

        Args:
            q: (B, Q, D) content queries.
            memory: (B, N, D) encoder features (after ``feature_proj``).
            memory_pos: (B, N, D) memory position encodings (sine + level embedding).
            query_pos: (B, Q, D) ``ref_point_head`` output.
            query_sine: (B, Q, D) scaled sine encoding of the reference centre (s in spec §1.6).
            memory_mask: (B, 1, 1, N) bool, True = real token (padding in batches), or None.
            attn_mask: (Q, Q) bool self-attention mask, True = query (row) may attend to key
                (column), or None (all queries see each other, the inference path). Training with
                denoising queries uses it to hide the DN groups from the matching queries and from
                each other.

        Returns:
            (B, Q, D) updated content (before ``decoder.norm``).
        """
        B, Q, D = q.shape
        # 1. Self-attention among the queries of each image.
        t = self.norm1(q)
        sq = self._heads(self.sa_qcontent_proj(t) + self.sa_qpos_proj(query_pos))
        sk = self._heads(self.sa_kcontent_proj(t) + self.sa_kpos_proj(query_pos))
        sv = self._heads(self.sa_v_proj(t))
        attn = F.scaled_dot_product_attention(
            sq, sk, sv, attn_mask=attn_mask
        )  # scale 1/sqrt(D/heads)
        q = q + self.sa_out_proj(attn.transpose(1, 2).reshape(B, Q, D))
        # 2. Cross-attention: per head q = [content ; sine], k = [content ; pos], scale 1/sqrt(2
        #    D/heads).
        t = self.norm2(q)
        qc = self.ca_qcontent_proj(t)
        kc = self.ca_kcontent_proj(memory)
        kp = self.ca_kpos_proj(memory_pos)
        if self.is_first:
            qc = qc + self.ca_qpos_proj(query_pos)
            kc = kc + kp
        qs = self.ca_qpos_sine_proj(query_sine)
        # Per head q = [qc ; qs] and k = [kc ; kp]: q.k = qc.kc + qs.kp, so the two halves are
        # multiplied separately instead of concatenating the (N, 2 D/heads) keys (the v width
        # differs anyway).
        scale = 1.0 / math.sqrt(2 * D // self.nheads)
        logits = self._heads(qc) @ self._heads(kc).transpose(-1, -2)
        logits = (
            logits + self._heads(qs) @ self._heads(kp).transpose(-1, -2)
        ) * scale  # (B, heads, Q, N)
        if memory_mask is not None:
            logits = logits.masked_fill(~memory_mask, float("-inf"))
        attn = torch.softmax(logits, dim=-1) @ self._heads(
            self.ca_v_proj(memory)
        )  # (B, heads, Q, D/heads)
        q = q + self.ca_out_proj(attn.transpose(1, 2).reshape(B, Q, D))
        # 3. FFN.
        return q + self.linear2(F.relu(self.linear1(self.norm3(q))))


class DABDecoder(nn.Module):
    """The layer stack with anchor refinement (official path ``decoder.decoder``).

    Args:
        d_model: width D.
        nheads: attention heads.
        num_layers: decoder layers.
        dim_feedforward: FFN width.
        bbox_embed: the per-layer box heads (shared with the network's ``bbox_embed``).
    """

    def __init__(
        self,
        d_model: int,
        nheads: int,
        num_layers: int,
        dim_feedforward: int,
        bbox_embed: nn.ModuleList,
    ):
        super().__init__()
        self.d_model = d_model
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, nheads, dim_feedforward, is_first=i == 0)
            for i in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_point_head = MLP(2 * d_model, d_model, d_model, 2)
        self.ref_anchor_head = MLP(d_model, d_model, 2, 2)
        self.bbox_embed = bbox_embed

    def forward(
        self,
        tgt: Tensor,
        refpoint_logits: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        memory_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Run all layers.

        Args:
            tgt: (B, Q, D) initial content (``tgt_embed``).
            refpoint_logits: (B, Q, 4) initial anchor logits (cx, cy, w, h).
            memory: (B, N, D) encoder features.
            memory_pos: (B, N, D) their position encodings.
            memory_mask: (B, 1, 1, N) bool, True = real token; None = all real.
            attn_mask: (Q, Q) bool query self-attention mask (True = may attend); None = unmasked
                (inference). Training passes it when denoising queries are prepended (spec §4.4).

        Returns:
            hs: per layer (B, Q, D) normed outputs h_l.
            boxes: per layer (B, Q, 4) boxes (cx, cy, w, h) / input_size, padded canvas.
        """
        half = self.d_model // 2
        ref = torch.sigmoid(refpoint_logits)
        q = tgt
        hs, boxes = [], []
        for idx, layer in enumerate(self.layers):
            cx, cy, w, h = ref.unbind(-1)
            sfull = torch.cat(
                [sine_embed_2d(cx, cy, half), sine_embed_2d(w, h, half)], dim=-1
            )  # (B,Q,2D)
            query_pos = self.ref_point_head(sfull)
            sine = sfull[..., : self.d_model]
            if idx > 0:
                sine = sine * self.query_scale(q)
            wh_ref = torch.sigmoid(self.ref_anchor_head(q))  # (B, Q, 2): (w_ref, h_ref)
            sine = torch.cat(
                [
                    sine[..., :half] * (wh_ref[..., 1] / h)[..., None],  # y part
                    sine[..., half:] * (wh_ref[..., 0] / w)[..., None],
                ],  # x part
                dim=-1,
            )
            q = layer(q, memory, memory_pos, query_pos, sine, memory_mask, attn_mask)
            out = self.norm(q)
            box = torch.sigmoid(self.bbox_embed[idx](out) + inverse_sigmoid(ref))
            hs.append(out)
            boxes.append(box)
            ref = box.detach()
        return hs, boxes


class Decoder(nn.Module):
    """Container reproducing the official key path ``decoder.decoder.*``."""

    def __init__(
        self,
        d_model: int,
        nheads: int,
        num_layers: int,
        dim_feedforward: int,
        bbox_embed: nn.ModuleList,
    ):
        super().__init__()
        self.decoder = DABDecoder(d_model, nheads, num_layers, dim_feedforward, bbox_embed)

    def forward(self, *args, **kwargs):
        return self.decoder(*args, **kwargs)
