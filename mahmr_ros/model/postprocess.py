"""Raw network outputs -> ``HumanEstimate`` per person, in the ORIGINAL image's camera (spec §3.3).

Pixel conventions and the reconciliation with a known camera K are documented in ``camera.py``:
results in original-image pixels use integer pixel centres (``u_img = u_net / r - 0.5``); with a
given K each person is re-placed so that it covers the same pixels in that camera (pelvis pixel
kept, apparent size kept, view kept), and ``focal`` / ``principal_point`` are then the given K's.
The 3D results do not depend on the image scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mahmr_ros.geometry import box_cxcywh_to_xyxy, project, rotmat_to_axis_angle
from mahmr_ros.model.camera import intrinsics_net_to_img, reconcile_to_camera
from mahmr_ros.model.preprocess import PreprocessMeta
from mahmr_ros.types import HumanEstimate

# Kid blend (betas[10]) above which a person counts as a child; 0 = adult, ~1 = child proportions.
KID_BLEND_CHILD = 0.5
# T-pose height below which a person counts as a child (with or without a kid blend).
CHILD_HEIGHT_M = 1.30


def postprocess(
    raw: dict,
    meta: PreprocessMeta | Sequence[PreprocessMeta],
    conf_thresh: float = 0.3,
    body=None,
    K: np.ndarray | Sequence[np.ndarray | None] | None = None,
    use_kid_blend: bool = True,
) -> list[list[HumanEstimate]]:
    """Keep confident queries, decode SMPL, express everything in the original image's camera.

    Args:
        raw: ``MetricAwareHMR.forward`` output for B images.
        meta: the ``preprocess`` meta of each image (one meta is accepted for B = 1).
        conf_thresh: keep queries with ``pred_confs > conf_thresh`` (strict; no NMS, spec §3.3).
        body: ``mahmr_ros.body.SMPLBody`` (``forward(rotmats, betas, transl) -> (vertices,
            joints)``, ``height(betas)``).
        K: per image a (3, 3) intrinsics of the ORIGINAL image in pixels (integer pixel centres, as
            ``CameraInfo.k``) to reconcile with (see module docstring), or None to use the FoV
            camera.
        use_kid_blend: feed betas[10] to the body (needs a body built with the kid template); False
            feeds only the 10 SMPL betas (the kid blend is then reported but not applied).

    Returns:
        Per image, the kept people in descending confidence order.

    Raises:
        ValueError: no body model, or the metas / K do not match the batch.
    """
    if body is None:
        raise ValueError("[model.postprocess] a body model is required (mahmr_ros.body.SMPLBody)")
    metas = [meta] if isinstance(meta, PreprocessMeta) else list(meta)
    B = raw["pred_confs"].shape[0]
    Ks = (
        [K] * B
        if K is None or (isinstance(K, np.ndarray) and np.asarray(K).ndim == 2)
        else list(K)
    )
    if len(metas) != B or len(Ks) != B:
        raise ValueError(
            f"[model.postprocess] batch of {B} images but {len(metas)} metas / {len(Ks)} K"
        )
    results = []
    for b in range(B):
        results.append(_postprocess_one(raw, b, metas[b], conf_thresh, body, Ks[b], use_kid_blend))
    return results


def _postprocess_one(raw, b, meta, conf_thresh, body, K_img, use_kid_blend) -> list[HumanEstimate]:
    confs = raw["pred_confs"][b].detach().float().cpu()
    keep = torch.nonzero(confs > conf_thresh).flatten()
    keep = keep[torch.argsort(confs[keep], descending=True)]
    r = float(meta.scale)
    transl = raw["pred_transl"][b, keep].detach().float().cpu()
    K_net = intrinsics_net_to_img(raw["pred_intrinsics"][b].detach().double().cpu().numpy(), r)
    K_used = K_net if K_img is None else np.asarray(K_img, dtype=np.float64).reshape(3, 3)
    if len(keep) == 0:
        return []
    rotmats = raw["pred_rotmats"][b, keep].detach().float().cpu()
    betas = raw["pred_betas"][b, keep].detach().float().cpu()
    if (
        betas.shape[1] == 10
    ):  # configs without the kid blend: report it as 0 (adult), always 11 betas
        betas = torch.nn.functional.pad(betas, (0, 1))
    body_betas = betas if use_kid_blend else betas[:, :10]
    with torch.no_grad():
        vertices, joints = body.forward(rotmats, body_betas, transl)
        heights = body.height(body_betas)
    vertices = _np(vertices)
    joints = _np(joints)
    heights = _np(heights).reshape(-1)
    rotmats = rotmats.numpy()
    transl = transl.numpy()
    if K_img is not None:
        vertices, joints, rotmats[:, 0], transl, _ = reconcile_to_camera(
            vertices, joints, rotmats[:, 0], transl, K_net, K_used
        )
    aa = rotmat_to_axis_angle(torch.as_tensor(rotmats)).reshape(len(keep), -1).numpy()
    boxes = raw["pred_boxes"][b, keep].detach().double().cpu().numpy() * meta.input_size / r
    xyxy = box_cxcywh_to_xyxy(boxes) - 0.5  # integer pixel centres (camera.py)
    fov = raw.get("pred_fov")
    humans = []
    for i, q in enumerate(keep.tolist()):
        kid_blend = float(betas[i, 10]) if betas.shape[1] > 10 else 0.0
        is_child = kid_blend > KID_BLEND_CHILD or float(heights[i]) < CHILD_HEIGHT_M
        humans.append(
            HumanEstimate(
                score=float(confs[q]),
                bbox_xyxy=xyxy[i],
                rotmats=rotmats[i],
                betas=betas[i].numpy(),
                transl=transl[i],
                vertices=vertices[i],
                joints=joints[i],
                focal=(K_used[0, 0], K_used[1, 1]),
                principal_point=(K_used[0, 2], K_used[1, 2]),
                height_m=float(heights[i]),
                is_child=is_child,
                body_model="smpl",
                pose=aa[i],
                keypoints_2d=project(joints[i].astype(np.float64), K_used).astype(np.float32),
                extras={
                    "query": q,
                    "kid_blend": kid_blend,
                    "pred_cam": raw["pred_cam"][b, q].detach().float().cpu().numpy(),
                    "fov_rad": float(fov[b]) if fov is not None else None,
                    "K_network": K_net,
                },
            )
        )
    return humans


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
