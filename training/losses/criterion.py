"""Every MA-HMR training loss (spec mahmr_model §4.2) with Hungarian matching per decoder layer.

Loss keys and their weights come from the stage config (``training/configs/*.yaml``, spec §4.3).
The last decoder layer's losses are named ``<name>``; layer l < L-1 repeats every loss except the
scale map and the FoV with its own matching as ``<name>.<l>``, weighted like ``<name>``. L1-type
losses are summed over matched people and divided by N_key, the number of GT people in the (global,
all-reduced) batch that carry that key.

Target dict per image (built by ``training.data.dataset``; G people, resized-image pixels):
    boxes (G, 4) (cx, cy, w, h) / input_size; j2ds (G, 45, 2) px; j2ds_mask (G, 45) bool;
    poses (G, 72) axis-angle; betas (G, S); j3ds (G, 45, 3) m camera frame;
    depths (G,) m (GT root z); focal () GT focal, resized px; has_3d () bool; detect_all () bool;
    scale_map (G1h, G1w, 2); depth_ids (G,) int ordinal layer (-1 unknown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from mahmr_ros.geometry import box_cxcywh_to_xyxy, generalized_box_iou, project
from training.losses.matcher import FOCAL_ALPHA, FOCAL_GAMMA, HungarianMatcher
from training.smpl_layer import CROWDPOSE14_FROM_SMPL_EXTRA

#: Per-beta weights of the ``betas`` loss: 10 SMPL PCs then the kid blend (spec §4.2).
BETA_WEIGHTS = (2.56, 1.28, 0.64, 0.64, 0.32, 0.32, 0.32, 0.32, 0.32, 0.32, 10.0)
MT_MAX_GAP_M = 1.0  # depths_mt uses pairs whose GT depth gap is at most 1 m
FOV_OVER_WEIGHT = 3.0  # over-estimated FoV costs 3x (spec §4.2)
LAYER_GAP_M = 0.3  # depths_re: a sorted GT depth gap >= 0.3 m starts a new ordinal layer
THREE_D_KEYS = ("poses", "betas", "j3ds", "depths", "depths_mt")


def focal_bce(
    p: Tensor, target: Tensor, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> Tensor:
    """Element-wise sigmoid focal loss on probabilities ``p`` (Lin et al. 2017), same shape as
    ``p``."""
    p = p.float().clamp(1e-6, 1 - 1e-6)
    ce = F.binary_cross_entropy(p, target.float(), reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return alpha_t * (1 - p_t) ** gamma * ce


def ordinal_layers(depths: Tensor, gap: float = LAYER_GAP_M) -> Tensor:
    """(G,) GT depths -> (G,) int layers: sorted, a gap >= ``gap`` starts the next layer (spec
    §4.2)."""
    order = torch.argsort(depths)
    layers = torch.zeros_like(depths, dtype=torch.int64)
    current = 0
    for a, b in zip(order[:-1].tolist(), order[1:].tolist(), strict=True):
        current += int(depths[b] - depths[a] >= gap)
        layers[b] = current
    return layers


def _global_counts(counts: list[float], device) -> list[float]:
    """Counts averaged over DDP ranks (the official per-rank normaliser), clamped >= 1: ONE
    all-reduce and one host read for all of them."""
    t = torch.tensor([float(n) for n in counts], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
        t = t / dist.get_world_size()
    return [max(v, 1.0) for v in t.tolist()]


class SetCriterion(torch.nn.Module):
    """Matching + weighted sum of the configured losses.

    Args:
        body: ``training.smpl_layer.SMPLLayer`` (joints of the predictions, differentiable).
        weights: loss name -> weight; a missing or zero weight disables the loss (``giou`` defaults
            to the ``boxes`` weight, as in the official code).
        input_size: network long side (box / 2D normaliser, 1288).
        matcher: a ``HungarianMatcher``; default = official costs.
        aux: also compute the auxiliary decoder-layer losses.
        joint_set: "smpl45" (the 45 SMPL joints) or "crowdpose14" (``use_extra_j``: 24 SMPL
            joints + the 9 ``J_regressor_extra`` joints picked as CrowdPose-14, spec §1.9;
            RelativeHuman fine-tune).
        extra_regressor: (9, V) ``J_regressor_extra``, required for "crowdpose14".
    """

    def __init__(
        self,
        body: torch.nn.Module,
        weights: Mapping[str, float],
        input_size: int = 1288,
        matcher: HungarianMatcher | None = None,
        aux: bool = True,
        joint_set: str = "smpl45",
        extra_regressor: Tensor | None = None,
    ) -> None:
        super().__init__()
        if joint_set not in ("smpl45", "crowdpose14"):
            raise ValueError(
                f"[training.losses] joint_set must be smpl45 or crowdpose14, got {joint_set!r}"
            )
        if joint_set == "crowdpose14" and extra_regressor is None:
            raise ValueError(
                "[training.losses] joint_set crowdpose14 needs J_regressor_extra (9, V)"
            )
        self.joint_set = joint_set
        self.register_buffer(
            "extra_regressor",
            None if extra_regressor is None else torch.as_tensor(extra_regressor).float(),
        )
        self.body = body
        self.weights = dict(weights)
        if "giou" not in self.weights and "boxes" in self.weights:
            self.weights["giou"] = self.weights["boxes"]
        self.input_size = input_size
        self.matcher = matcher or HungarianMatcher(input_size=input_size)
        self.aux = aux

    def _normalisers(self, targets: list[dict], device) -> tuple[float, float]:
        """(N people, N 3D-valid people) over the global batch; computed once per ``forward``."""
        key = id(targets)
        if getattr(self, "_norm_key", None) != key:
            n_all = sum(len(t["boxes"]) for t in targets)
            n_3d = sum(len(t["boxes"]) for t in targets if bool(t["has_3d"]))
            self._norm_key, self._norm = key, _global_counts([n_all, n_3d], device)
        return self._norm[0], self._norm[1]

    def active(self, name: str) -> bool:
        return float(self.weights.get(name, 0.0)) != 0.0

    # ------------------------------------------------------------------------------------ decoding
    def decode(self, layer: dict, K: Tensor) -> tuple[Tensor, Tensor]:
        """Camera-frame joints (B, Q, 45, 3) m and their projections (B, Q, 45, 2) px (predicted
        K)."""
        B, Q = layer["pred_betas"].shape[:2]
        verts, joints = self.body(
            layer["pred_rotmats"].reshape(B * Q, 24, 3, 3).float(),
            layer["pred_betas"].reshape(B * Q, -1).float(),
        )
        if self.joint_set == "crowdpose14":
            extra = torch.einsum("jv,nvc->njc", self.extra_regressor.to(verts), verts)
            joints = torch.cat([joints[:, :24], extra], 1)[:, CROWDPOSE14_FROM_SMPL_EXTRA]
        j3d = joints.reshape(B, Q, -1, 3) + layer["pred_transl"][:, :, None].float()
        return j3d, project(j3d, K.float(), min_depth_m=1e-3)  # one K per image

    # ------------------------------------------------------------------------------------- forward
    def forward(self, outputs: dict, targets: list[dict]) -> tuple[Tensor, dict[str, Tensor]]:
        """Total weighted loss and every unweighted term (keys ``name`` / ``name.l``) for logging.

        Args:
            outputs: ``training.forward.forward_train`` output.
            targets: per-image target dicts (see the module docstring), on the outputs' device.
        """
        self._norm_key = (
            None  # new batch: recount (the DN losses reuse this batch's counts afterwards)
        )
        layers = outputs["layers"]
        K = outputs["pred_intrinsics"]
        terms: dict[str, Tensor] = {}
        num_layers = len(layers)
        for idx, layer in enumerate(layers):
            if idx < num_layers - 1 and not self.aux:
                continue
            suffix = "" if idx == num_layers - 1 else f".{idx}"
            j3d, j2d = self.decode(layer, K)
            indices = self.matcher(layer, j2d.detach(), targets)
            losses = self.layer_losses(layer, j3d, j2d, indices, targets, outputs["pred_focal"])
            for name, value in losses.items():
                terms[name + suffix] = value
        if self.active("fov") and outputs.get("pred_fov") is not None:
            terms["fov"] = self.loss_fov(outputs["pred_focal"], targets)
        if self.active("map_confs") or self.active("map_scales"):
            terms.update(self.loss_scale_map(outputs["scale_map"], targets))
        total = sum(self.weights.get(k.split(".")[0], 0.0) * v for k, v in terms.items())
        return total, terms

    def layer_losses(self, layer, j3d, j2d, indices, targets, focal: Tensor) -> dict[str, Tensor]:
        """The per-layer terms for matched pairs ``indices`` (list over images of (query, GT)
        indices).

        Args:
            layer: one decoder layer of ``forward_train``.  j3d: (B, Q, 45, 3) m.  j2d: (B, Q,
                45, 2) px.
            focal: (B,) predicted focal, resized px.
        """
        device = j3d.device
        batch = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(indices)]).to(device)
        query = torch.cat([q for q, _ in indices]).to(device)
        gt_idx = [g.to(device) for _, g in indices]

        def gather(key):
            return torch.cat([t[key][g] for t, g in zip(targets, gt_idx, strict=True)]).to(device)

        has3d = torch.cat(
            [t["has_3d"].to(device).expand(len(g)) for t, g in zip(targets, gt_idx, strict=True)]
        ).bool()
        n_all, n_3d = self._normalisers(targets, device)
        out: dict[str, Tensor] = {}
        zero = j3d.sum() * 0.0
        if self.active("confs"):
            out["confs"] = self.loss_confs(layer["pred_confs"], indices, targets)
        if self.active("boxes") or self.active("giou"):
            pb, gb = layer["pred_boxes"][batch, query].float(), gather("boxes").float()
            out["boxes"] = (pb - gb).abs().sum() / n_all
            giou = generalized_box_iou(
                box_cxcywh_to_xyxy(pb), box_cxcywh_to_xyxy(gb)
            )  # matched pairs
            out["giou"] = (1 - giou).sum() / n_all
        if self.active("j2ds"):
            diff = (j2d[batch, query] - gather("j2ds")).abs() / self.input_size  # (M, J, 2)
            mask = gather("j2ds_mask")[..., None].float()
            out["j2ds"] = (diff * mask).mean((-1, -2)).sum() / n_all
        sel = has3d
        if self.active("poses"):
            d = (layer["pred_poses"][batch, query] - gather("poses")).abs().mean(-1)
            out["poses"] = (d * sel).sum() / n_3d
        if self.active("betas"):
            pred_b = layer["pred_betas"][batch, query]
            w = torch.tensor(BETA_WEIGHTS[: pred_b.shape[-1]], device=device)
            d = (w * (pred_b - gather("betas")[..., : pred_b.shape[-1]]).abs()).mean(-1)
            out["betas"] = (d * sel).sum() / n_3d
        if self.active("j3ds"):
            pj, gj = j3d[batch, query], gather("j3ds")
            d = ((pj - pj[:, :1]) - (gj - gj[:, :1])).abs().mean((-1, -2))
            out["j3ds"] = (d * sel).sum() / n_3d
        if self.active("depths"):
            focal_gt = torch.cat(
                [
                    t["focal"].to(device).expand(len(g))
                    for t, g in zip(targets, gt_idx, strict=True)
                ]
            )
            tz = layer["pred_transl"][batch, query, 2]
            depth_in_gt_camera = focal_gt * tz / focal[batch]
            d = (
                1 / depth_in_gt_camera.clamp(min=1e-3) - 1 / gather("depths").clamp(min=1e-3)
            ).abs()
            out["depths"] = (d * sel).sum() / n_3d
        if self.active("depths_mt"):
            out["depths_mt"] = self.loss_depths_mt(layer, indices, targets) if len(query) else zero
        if self.active("depths_re"):
            out["depths_re"] = self.loss_depths_re(layer, indices, targets) if len(query) else zero
        return out

    # --------------------------------------------------------------------------------------- terms
    def loss_confs(self, confs: Tensor, indices, targets) -> Tensor:
        """Focal BCE, target 1 on matched queries; mean over all queries of ``detect_all`` images,
        else over the matched ones only (``det_mask_lvl = image``)."""
        target = torch.zeros_like(confs)
        valid = torch.zeros_like(confs, dtype=torch.bool)
        for b, ((q, _), t) in enumerate(zip(indices, targets, strict=True)):
            target[b, q.to(confs.device)] = 1.0
            if bool(t["detect_all"]):
                valid[b] = True
            else:
                valid[b, q.to(confs.device)] = True
        loss = focal_bce(confs, target)
        return (loss * valid).sum() / valid.sum().clamp(min=1)

    def loss_depths_mt(self, layer: dict, indices, targets) -> Tensor:
        """Relative metric depth: mean over pairs i<j with |GT gap| <= 1 m of log(1 + |dz_pred -
        dz_gt|)."""
        losses = []
        for b, ((q, g), t) in enumerate(zip(indices, targets, strict=True)):
            if len(q) < 2 or not bool(t["has_3d"]):
                continue
            tz = layer["pred_transl"][b, q.to(layer["pred_transl"].device), 2]
            d = t["depths"][g.to(tz.device)].to(tz)
            i, j = torch.triu_indices(len(q), len(q), 1, device=tz.device)
            gap_gt, gap_pred = d[j] - d[i], tz[j] - tz[i]
            ok = gap_gt.abs() <= MT_MAX_GAP_M
            losses.append(torch.log1p((gap_pred - gap_gt).abs())[ok])
        flat = torch.cat(losses) if losses else layer["pred_transl"].new_zeros(0)
        return flat.mean() if len(flat) else layer["pred_transl"].sum() * 0.0

    def loss_depths_re(self, layer: dict, indices, targets) -> Tensor:
        """Ordinal depth (RelativeHuman fine-tune): |dz| same layer, softplus(dz) if j is nearer,
        softplus(-dz) if j is farther; layers from ``depth_ids`` or, if unknown, from GT depths
        (gap >= 0.3 m)."""
        losses = []
        for b, ((q, g), t) in enumerate(zip(indices, targets, strict=True)):
            if len(q) < 2:
                continue
            tz = layer["pred_transl"][b, q.to(layer["pred_transl"].device), 2]
            ids = t["depth_ids"][g.to(tz.device)].to(tz.device)
            if bool((ids < 0).any()):
                if not bool(t["has_3d"]):
                    continue
                ids = ordinal_layers(t["depths"][g.to(tz.device)])
            i, j = torch.triu_indices(len(q), len(q), 1, device=tz.device)
            dz = tz[j] - tz[i]
            same, nearer = ids[j] == ids[i], ids[j] < ids[i]
            losses.append(
                torch.where(same, dz.abs(), torch.where(nearer, F.softplus(dz), F.softplus(-dz)))
            )
        flat = torch.cat(losses) if losses else layer["pred_transl"].new_zeros(0)
        return flat.mean() if len(flat) else layer["pred_transl"].sum() * 0.0

    def loss_fov(self, pred_focal: Tensor, targets) -> Tensor:
        """Sum over images of w (phi_pred - phi_gt)^2, vertical FoVs of the resized image, w = 3 if
        over."""
        cy = torch.stack([t["resized_hw"][0].to(pred_focal) / 2 for t in targets])
        f_gt = torch.stack([t["focal"].to(pred_focal) for t in targets])
        phi_pred = 2 * torch.atan(cy / pred_focal)
        phi_gt = 2 * torch.atan(cy / f_gt)
        w = torch.where(phi_pred > phi_gt, FOV_OVER_WEIGHT, 1.0)
        return (w * (phi_pred - phi_gt) ** 2).sum()

    def loss_scale_map(self, scale_map: Tensor, targets) -> dict[str, Tensor]:
        """SAT supervision: focal BCE on channel 0, L1 on channel 1 over positive cells."""
        B, Gh, Gw, _ = scale_map.shape
        gt = torch.zeros_like(scale_map)
        valid = torch.zeros(B, Gh, Gw, dtype=torch.bool, device=scale_map.device)
        for b, t in enumerate(targets):
            m = t["scale_map"].to(scale_map)
            gt[b, : m.shape[0], : m.shape[1]] = m[:Gh, :Gw]
            valid[b] = True if bool(t["detect_all"]) else gt[b, ..., 0] > 0
        pos = gt[..., 0] > 0
        conf = focal_bce(scale_map[..., 0], gt[..., 0])
        out = {"map_confs": (conf * valid).sum() / valid.sum().clamp(min=1)}
        out["map_scales"] = ((scale_map[..., 1] - gt[..., 1]).abs() * pos).sum() / pos.sum().clamp(
            min=1
        )
        return out


def fov_from_focal(focal_px: float, height_px: float) -> float:
    """Vertical FoV (rad) of an image of height ``height_px`` with focal ``focal_px``."""
    return 2 * math.atan(height_px / 2 / focal_px)
